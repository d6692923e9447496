"""What the oldest supported Python (3.9, Debian bullseye / RHEL 9) lacks, in one place."""

from __future__ import annotations

from enum import Enum

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any


class StrEnum(str, Enum):
    """enum.StrEnum (3.11): members are their values, in str() and f-strings alike."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


def toml_loads(text: str) -> dict[str, Any]:
    """Parse TOML into plain dicts, lists and scalars with tomlkit (packaged by Debian from
    bullseye's 0.6 on; tomllib is 3.11+). Raises ValueError on invalid TOML."""
    import tomlkit

    doc = tomlkit.parse(text)
    unwrap = getattr(doc, "unwrap", None)  # tomlkit >= 0.11
    plain = unwrap() if unwrap is not None else doc.value
    return dict(plain)
