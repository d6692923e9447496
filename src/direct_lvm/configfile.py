"""Reading a config file without surprises: the size is checked before anything is read
(at most MAX_CONFIG_BYTES + 1 bytes ever are), the bytes must be UTF-8, the YAML may not
repeat a mapping key, and the composed node tree is kept so an error can name the line
and column of the field it is about. Every problem is a ConfigError (exit 2), so at boot
each one holds the runtime back the same way."""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from .errors import ConfigError

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from yaml.nodes import Node

    from ._yamldoc import Document

# A direct_lvm config is a few hundred bytes; a megabyte is certainly the wrong file.
MAX_CONFIG_BYTES = 1 << 20


def _too_big(path: str, size: str) -> ConfigError:
    return ConfigError(
        f"config {path!r} is {size}, over the {MAX_CONFIG_BYTES >> 20} MiB limit for a config",
        "a direct_lvm config is a few lines of YAML: check that this is the right file",
        value=path,
    )


def read_config(path: str | Path) -> str:
    """The text of a config file. Anything that keeps it from being a config (missing, a
    directory, unreadable, too big, not UTF-8) is a ConfigError naming the path and the
    fix."""
    text = _read(str(path), missing_ok=False)
    if text is None:  # pragma: no cover (missing_ok=False raises instead)
        raise ConfigError(f"cannot read config {str(path)!r}", "check the path")
    return text


def read_config_if_present(path: str | Path) -> str | None:
    """read_config, but None when the file does not exist (the boot's optional file)."""
    return _read(str(path), missing_ok=True)


def _read(p: str, *, missing_ok: bool) -> str | None:
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not hang (cleared below)
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise ConfigError(
            f"cannot read config {p!r}: No such file or directory",
            "check the path",
            value=p,
        ) from None
    except OSError as e:
        raise _os_error(p, e) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(
                f"cannot read config {p!r}: it is a directory",
                f"give the YAML file itself, e.g. {p.rstrip('/')}/config.yaml",
                value=p,
            )
        if stat.S_ISREG(st.st_mode) and st.st_size > MAX_CONFIG_BYTES:
            raise _too_big(p, f"{st.st_size} bytes")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        chunks: list[bytes] = []
        total = 0
        while total <= MAX_CONFIG_BYTES:  # a pipe or a device: read at most cap + 1 bytes
            chunk = os.read(fd, MAX_CONFIG_BYTES + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > MAX_CONFIG_BYTES:
            raise _too_big(p, f"more than {MAX_CONFIG_BYTES} bytes")
    except OSError as e:
        raise _os_error(p, e) from None
    finally:
        os.close(fd)
    return decode(b"".join(chunks), p)


def _os_error(path: str, e: OSError) -> ConfigError:
    reason = e.strerror or str(e)
    if isinstance(e, PermissionError):
        hint = f"run as root, or make it readable: chmod a+r {path}"
    elif isinstance(e, NotADirectoryError):
        hint = "a part of the path is a file, not a directory: check the path"
    else:
        hint = "check the path"
    return ConfigError(f"cannot read config {path!r}: {reason}", hint, value=path)


def decode(data: bytes, source: str) -> str:
    """UTF-8 text (a leading BOM dropped); anything else names the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(
            f"{source}: byte 0x{data[e.start]:02x} at line {line}, column {column} is not "
            "UTF-8 text",
            "a config is YAML text: save it as UTF-8 (is this a binary or compressed file?)",
            value=source,
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


# The YAML half lives in _yamldoc (PyYAML imported there): these are its entry points.


def load_yaml(text: str, source: str) -> Document:
    """Parse one YAML document; every syntax problem is a ConfigError with its line."""
    from ._yamldoc import load_yaml as load

    return load(text, source)


def child(node: Node | None, key: str | int) -> tuple[Node | None, Node | None]:
    """(key node, value node) of `key` in a mapping node, or (None, item) in a sequence."""
    if node is None:
        return None, None
    from ._yamldoc import child as of

    return of(node, key)


def position(node: Node | None, path: Sequence[str | int], *, key: bool = False) -> str:
    """' (line L, column C)' of the value at path (or of its key), else of the nearest
    enclosing node that exists; '' without a node tree."""
    if node is None:
        return ""
    from ._yamldoc import position as at

    return at(node, path, key=key)
