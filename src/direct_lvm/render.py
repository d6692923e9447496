"""The one place that renders templates (templates/ in the source tree, shipped inside
the wheel). StrictUndefined: a missing value is an error, never an empty string. Every
value is escaped for its target by a filter named after it.

jinja2 is imported only to render. apply and the boot path (`remember`) keep a record
of what they rendered (RECORD): each text under a SHA-256 of everything it depends on
(our version, the template's source, this module's source, jinja2's install, the
context's values and types). An identical request is answered from the record without
jinja2; any change in one of those renders afresh. The record says what a template
gives, not what is on disk: the plan still compares every file on disk with it, so a
hand-edited file is still converged."""

from __future__ import annotations

import json
import logging
import os
import re
from functools import cache
from pathlib import Path

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    import jinja2

    T = TypeVar("T")

_PKG = Path(__file__).resolve().parent
log = logging.getLogger("direct_lvm")

# What apply and the boot path rendered (a cache: deleting it only costs a jinja2 import).
RECORD = "/var/lib/direct-lvm/rendered.json"
RECORD_FORMAT = 1
RECORD_KEEP = 64  # entries; the least recently used go first


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


_ENV_WORD = re.compile(r"[A-Za-z0-9_@+=:,./-]+")


def env_words(value: object) -> str:
    """A list of arguments as one double-quoted EnvironmentFile= value that an unbraced
    `$VAR` in an Exec*= line splits back into those arguments: systemd splits it at
    whitespace and unquotes nothing, so each word must be plain (no space, quote,
    backslash or `$`); anything else is refused, never mangled."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"env_words takes a list of arguments: {value!r}")
    for word in value:
        if not _ENV_WORD.fullmatch(str(word)):
            raise ValueError(f"not a plain word for an environment file: {word!r}")
    return '"' + " ".join(str(w) for w in value) + '"'


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
    import yaml

    return (
        yaml.safe_dump(value, default_flow_style=True, width=10**9)
        .rstrip("\n")
        .removesuffix("\n...")
    )


def yaml_block(value: str, indent: int) -> str:
    """A string as a YAML literal block scalar ('|'), for a value nested `indent` spaces
    deep; PyYAML chooses the quoting it needs when a literal cannot hold the text."""
    import yaml

    dumped = yaml.safe_dump(value, default_style="|", width=10**9)
    first, _, rest = dumped.partition("\n")
    pad = " " * indent
    return first + "".join(f"\n{pad}{line}" if line else "\n" for line in rest.split("\n"))


def comment(value: object) -> str:
    """Text safe inside a '#' comment line of any of our targets."""
    return re.sub(r"[\r\n\0]", " ", str(value))


@cache
def environment() -> jinja2.Environment:
    import jinja2

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
        env_words=env_words,
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


def _render(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(**context)


# Context values whose repr() is canonical and tells their type apart (a tuple from a
# list, True from 1); anything else (an enum, an object) is rendered, never recorded.
_PLAIN = (str, int, float, bool, type(None))


def _canonical(value: Any) -> str | None:
    kind = type(value)
    if kind in _PLAIN:
        return repr(value)
    if kind is list or kind is tuple or kind is dict:
        pairs = value.items() if kind is dict else ((None, v) for v in value)
        parts = []
        for k, v in pairs:  # in order: a template may iterate it
            if kind is dict and type(k) is not str:
                return None
            item = _canonical(v)
            if item is None:
                return None
            parts.append(item if kind is not dict else f"{k!r}: {item}")
        body = ", ".join(parts)
        if kind is list:
            return "[" + body + "]"
        return "(" + body + ",)" if kind is tuple else "{" + body + "}"
    return None


def install_identity(package: str) -> str:
    """A library's install, without importing it: its package file's path, size and
    mtime (an upgrade changes them); '' when it is not installed."""
    from importlib.machinery import PathFinder

    spec = PathFinder.find_spec(package)
    origin = spec.origin if spec is not None else None
    if not origin:
        return ""
    st = os.stat(origin)
    return f"{origin} {st.st_size} {st.st_mtime_ns}"


@cache
def _code_identity() -> str:
    """What the rendering code is: our version, this module's source, jinja2's install."""
    from . import __version__

    return "\0".join([__version__, Path(__file__).read_text(), install_identity("jinja2")])


@cache
def _sha256() -> Any:
    """SHA-256 from CPython's own module (_sha2 from 3.12, _sha256 before): hashlib would
    load OpenSSL, ~8 ms of a converged run's imports."""
    from importlib import import_module

    for name in ("_sha2", "_sha256"):
        try:
            return import_module(name).sha256
        except ImportError:
            continue
    import hashlib

    return hashlib.sha256


def digest(*parts: str) -> str:
    """The record's key for what the parts say (SHA-256 of them, NUL-separated)."""
    return str(_sha256()("\0".join(parts).encode()).hexdigest())


def _key(template: str, context: dict[str, Any]) -> str | None:
    """The record's key for one rendering, or None when the context is not plain data."""
    ctx = _canonical(context)
    if ctx is None:
        return None
    source = (templates_dir() / template).read_text()
    return digest(_code_identity(), template, source, ctx)


class _Record:
    """The record file, loaded once; written back (atomically) when a rendering was
    added. Any fault reading it is an empty record; writing it is best effort."""

    def __init__(self, path: str, *, write: bool = True) -> None:
        self.path = path
        self.write = write
        self.warmed = False  # answered() started jinja2's import
        self.entries: dict[str, str] = self._load()

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(Path(self.path).read_text())
        except (OSError, ValueError):
            return {}
        if isinstance(data, dict) and data.get("format") == RECORD_FORMAT:
            entries = data.get("entries")
            if isinstance(entries, dict):
                return {k: v for k, v in entries.items() if isinstance(v, str)}
        return {}

    def get(self, key: str) -> str | None:
        text = self.entries.pop(key, None)
        if text is not None:
            self.entries[key] = text  # most recently used last
        return text

    def put(self, key: str, text: str) -> None:
        self.entries.pop(key, None)
        self.entries[key] = text
        while len(self.entries) > RECORD_KEEP:
            del self.entries[next(iter(self.entries))]
        if self.write:
            self._save()

    def _save(self) -> None:
        import tempfile

        doc = json.dumps({"format": RECORD_FORMAT, "entries": self.entries}, indent=1)
        target = Path(self.path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(doc + "\n")
                os.replace(tmp, target)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as e:  # a cache: the next run renders again
            log.debug("could not keep the render record %s: %s", self.path, e)


_record: list[_Record] = []  # the one record in use, when remember() was called


def remember(path: str = "", *, write: bool = True) -> None:
    """From now on in this process, answer repeated renderings from the record at path
    (default RECORD), and add new ones to it unless write is False (plan: read-only).
    apply, the boot path and plan call this; render and image-setup do not."""
    _record[:] = [_Record(path or RECORD, write=write)]


class _Missing(Exception):
    """Inside answered(): a rendering the record does not hold."""


_ASKING: list[bool] = []  # inside answered(): render() answers from the record or raises


def answered(renders: Callable[[], T]) -> T | None:
    """renders() now, with every rendering answered from the record only: its result when
    the record held them all. When one is missing this run will render: jinja2 is
    imported and the environment built in a thread from now (core.observe calls this as
    the probes' commands start: the main thread then waits on lvm and lsblk with the GIL
    released), and None is returned. Under TCG the import is ~0.4 s of a first apply.
    environment() and the import lock make render() wait for the thread, or do it,
    whichever comes first. A converged run, or a first boot whose layout image-setup
    rendered into the record (core.seed_record), never imports it. No record in use:
    None, and nothing started."""
    if not _record:
        return None
    _ASKING.append(True)
    try:
        return renders()
    except _Missing:
        pass
    finally:
        _ASKING.pop()
    if not _record[0].warmed:
        _record[0].warmed = True
        _prefetch()
    return None


def _prefetch() -> None:
    import threading  # logging has imported it already

    threading.Thread(target=_warm, name="direct-lvm-jinja2", daemon=False).start()


def _warm() -> None:
    import contextlib

    with contextlib.suppress(Exception):  # render() raises it where it is needed
        environment()


def forget() -> None:
    """Render everything afresh again (the record is left as it is)."""
    _record[:] = []


def recall(key: str) -> str | None:
    """What the record in use holds under key (None: no record in use, or no entry).
    Besides renderings, spec.read_mapping keeps parsed config texts here."""
    return _record[0].get(key) if _record else None


def keep(key: str, text: str) -> None:
    """Add to the record in use (if any; written back unless it is read-only)."""
    if _record:
        _record[0].put(key, text)


def render(template: str, **context: Any) -> str:
    record = _record[0] if _record else None
    key = _key(template, context) if record is not None else None
    if record is None or key is None:
        if _ASKING:
            raise _Missing
        return _render(template, context)
    text = record.get(key)
    if text is None:
        if _ASKING:
            raise _Missing
        log.debug("rendering %s with jinja2 (not in the render record)", template)
        text = _render(template, context)
        record.put(key, text)
    return text
