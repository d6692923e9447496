"""Record: __eq__, __hash__ and __repr__ for frozen dataclasses, written once.

`@dataclass(frozen=True)` generates six methods per class, each by compiling source
text with exec() when the class is created: a converged run creates 27 such classes at
import, and those exec() calls were a third of its import CPU time (19 of 55 ms on the
host; ~10x that in a TCG guest). A hot-path class takes three of them from here instead:

    @dataclass(frozen=True, eq=False, repr=False)
    class LV(Record): ...

dataclass then compiles only __init__, __setattr__ and __delattr__ (frozen). The three
below do what dataclass's would: __eq__ compares the fields with compare=True when both
objects are of the same class (else NotImplemented), __hash__ hashes the same tuple
(no field here sets hash=), and __repr__ is `QualName(field=value!r, ...)` over the
fields with repr=True. tests/unit/test_record.py checks them against dataclass's own."""

from __future__ import annotations

import reprlib
from dataclasses import fields

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any

# class -> (names compared and hashed, names shown by repr), computed on first use
_NAMES: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


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
