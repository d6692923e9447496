"""Record: a frozen dataclass for the hot path, its methods written once.

`@dataclass(frozen=True)` generates six methods per class, each by compiling source
text with exec() when the class is created: a converged run creates 27 such classes at
import, and those exec() calls were most of its import CPU time (16 of 29 ms of our
modules' imports on the host; ~10x that in a TCG guest, issue 13). A hot-path class is
declared

    @record
    class LV(Record): ...

and gets a real dataclass (fields(), replace(), field(default=..., compare=...,
repr=...) as before) whose methods are Record's, none compiled: __init__ (positional
and keyword arguments in field order, defaults and default factories, the same
TypeErrors), __setattr__/__delattr__ that raise FrozenInstanceError as a frozen
dataclass's do, and __eq__ (the fields with compare=True when both objects are of the
same class, else NotImplemented), __hash__ (the same tuple; no field here sets hash=)
and __repr__ (`QualName(field=value!r, ...)` over the fields with repr=True).
The type checker reads @record as dataclass(frozen=True) (PEP 681's
dataclass_transform), so constructors and assignments are checked as before.
tests/unit/test_record.py checks them against dataclass's own."""

from __future__ import annotations

import reprlib
from dataclasses import MISSING, Field, FrozenInstanceError, dataclass, field, fields

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from typing_extensions import dataclass_transform

    _T = TypeVar("_T")
else:

    def dataclass_transform(**_kw):
        return lambda decorator: decorator


# class -> (names compared and hashed, names shown by repr), computed on first use
_NAMES: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}
# class -> (its __init__'s parameters in order, the defaults by name: (value, factory))
_INIT: dict[type, tuple[tuple[str, ...], dict[str, tuple[Any, Any]]]] = {}


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def record(cls: type[_T]) -> type[_T]:
    """Make cls (a Record subclass) a frozen dataclass without compiling a method."""
    return dataclass(init=False, repr=False, eq=False)(cls)


def _init_params(cls: type) -> tuple[tuple[str, ...], dict[str, tuple[Any, Any]]]:
    params = _INIT.get(cls)
    if params is None:
        fs = [f for f in fields(cls) if f.init]
        defaults = {f.name: (f.default, f.default_factory) for f in fs
                    if f.default is not MISSING or f.default_factory is not MISSING}  # fmt: skip
        params = (tuple(f.name for f in fs), defaults)
        _INIT[cls] = params
    return params


def _names(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names = _NAMES.get(cls)
    if names is None:
        fs = fields(cls)
        names = (tuple(f.name for f in fs if f.compare), tuple(f.name for f in fs if f.repr))
        _NAMES[cls] = names
    return names


class Record:
    """Base of a frozen dataclass declared with eq=False, repr=False (see the module)."""

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = self.__class__
        names, defaults = _init_params(cls)
        if len(args) > len(names):
            raise TypeError(
                f"{cls.__qualname__}() takes {len(names)} arguments but {len(args)} were given"
            )
        values = dict(zip(names, args))
        for name, value in kwargs.items():
            if name in values:
                raise TypeError(f"{cls.__qualname__}() got multiple values for argument {name!r}")
            if name not in defaults and name not in names:
                raise TypeError(f"{cls.__qualname__}() got an unexpected keyword argument {name!r}")
            values[name] = value
        set_field = object.__setattr__
        for name in names:
            if name in values:
                set_field(self, name, values[name])
            elif name in defaults:
                value, factory = defaults[name]
                set_field(self, name, factory() if value is MISSING else value)
            else:
                raise TypeError(f"{cls.__qualname__}() missing required argument: {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, n) for n in _names(self.__class__)[0])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()  # type: ignore[attr-defined, no-any-return]

    def __hash__(self) -> int:
        return hash(self._key())

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in _names(self.__class__)[1])
        return f"{self.__class__.__qualname__}({shown})"
