"""The one place that renders templates (templates/ in the source tree, shipped inside
the wheel). StrictUndefined: a missing value is an error, never an empty string. Every
value is escaped for its target by a filter named after it."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

_PKG = Path(__file__).resolve().parent


def templates_dir() -> Path:
    for candidate in (_PKG / "templates", _PKG.parents[1] / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("direct-lvm templates not found (broken install?)")


_SYSTEMD_PLAIN = re.compile(r"[A-Za-z0-9_@+=:,./-]+")


def systemd_arg(value: object) -> str:
    """One argument for an Exec*= line: % and $ doubled, quoted when needed."""
    s = str(value)
    if any(c in s for c in "\n\r\0"):
        raise ValueError(f"a systemd argument cannot contain a line break: {s!r}")
    s = s.replace("%", "%%").replace("$", "$$")
    if _SYSTEMD_PLAIN.fullmatch(s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_value(value: object) -> str:
    """A unit-file value that is not a command line: no line breaks, % doubled."""
    s = str(value)
    if any(c in s for c in "\n\r\0"):
        raise ValueError(f"a systemd value cannot contain a line break: {s!r}")
    return s.replace("%", "%%")


def systemd_verbatim(value: object) -> str:
    """Text that is already in systemd syntax (a unit's own ExecStart): kept as it is,
    but it must stay on one line."""
    s = str(value)
    if any(c in s for c in "\n\r\0"):
        raise ValueError(f"a systemd line cannot contain a line break: {s!r}")
    return s


def lvm_int(value: object) -> str:
    str(value)  # an undefined value raises here (StrictUndefined), not as a type error
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"an LVM config number must be an integer: {value!r}")
    return str(value)


def lvm_str(value: object) -> str:
    """A double-quoted LVM config string."""
    s = str(value)
    if any(c in s for c in "\n\r\0"):
        raise ValueError(f"an LVM config string cannot contain a line break: {s!r}")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                 "\f": "\\f", "\r": "\\r"}  # fmt: skip


def toml_str(value: object) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for c in str(value):
        if c in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def toml_bool(value: object) -> str:
    str(value)  # an undefined value raises here (StrictUndefined)
    if not isinstance(value, bool):
        raise ValueError(f"a TOML boolean must be a bool: {value!r}")
    return "true" if value else "false"


def toml_int(value: object) -> str:
    str(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"a TOML integer must be an int: {value!r}")
    return str(value)


def yaml_value(value: object) -> str:
    """A YAML flow value (safe_dump), usable inline after `key: `."""
    return (
        yaml.safe_dump(value, default_flow_style=True, width=10**9)
        .rstrip("\n")
        .removesuffix("\n...")
    )


def yaml_block(value: str, indent: int) -> str:
    """A string as a YAML literal block scalar ('|'), for a value nested `indent` spaces
    deep; PyYAML chooses the quoting it needs when a literal cannot hold the text."""
    dumped = yaml.safe_dump(value, default_style="|", width=10**9)
    first, _, rest = dumped.partition("\n")
    pad = " " * indent
    return first + "".join(f"\n{pad}{line}" if line else "\n" for line in rest.split("\n"))


def comment(value: object) -> str:
    """Text safe inside a '#' comment line of any of our targets."""
    return re.sub(r"[\r\n\0]", " ", str(value))


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - not HTML; each target has its own escaping filter
    )
    env.filters.update(
        systemd_arg=systemd_arg,
        systemd_value=systemd_value,
        systemd_verbatim=systemd_verbatim,
        lvm_int=lvm_int,
        lvm_str=lvm_str,
        toml_str=toml_str,
        toml_bool=toml_bool,
        toml_int=toml_int,
        yaml=yaml_value,
        yaml_block=yaml_block,
        comment=comment,
    )
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
