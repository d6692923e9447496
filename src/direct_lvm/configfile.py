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

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigError

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any

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


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping names the same key twice (YAML says keys are unique; PyYAML keeps the
    last one silently)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses a repeated mapping key, naming it and both lines."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges; an own key overriding a merged one is fine
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: SafeLoader's own error follows
            if first is not None:
                raise DuplicateKeyError(
                    f"while reading the mapping starting at line {node.start_mark.line + 1}",
                    node.start_mark,
                    f"duplicate key {key!r} (first at line {first.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


class Document:
    """A parsed YAML document: the data and the node tree it came from."""

    def __init__(self, data: Any, node: Node | None) -> None:
        self.data = data
        self.node = node


def load_yaml(text: str, source: str) -> Document:
    """Parse one YAML document; every syntax problem is a ConfigError with its line."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader checks every character here
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except DuplicateKeyError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"{source}: {e.problem}{where}",
            "keep one of them (YAML keys are unique; the last one would silently win)",
        ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        if mark is None and isinstance(e, yaml.reader.ReaderError):
            text_before = text[: e.position]
            line, column = text_before.count("\n") + 1, e.position - text_before.rfind("\n")
            where = f" at line {line}, column {column}"
        else:
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or getattr(e, "reason", None) or e
        raise ConfigError(
            f"{source}: not valid YAML{where}: {problem}",
            "fix the YAML syntax (check indentation and quoting)",
        ) from None
    except RecursionError:
        raise ConfigError(
            f"{source}: the YAML is nested too deeply to be a config",
            "a direct_lvm config is a flat mapping with short lists: check the file",
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    return Document(data, node)


def child(node: Node | None, key: str | int) -> tuple[Node | None, Node | None]:
    """(key node, value node) of `key` in a mapping node, or (None, item) in a sequence."""
    if isinstance(node, MappingNode) and isinstance(key, str):
        found: tuple[Node | None, Node | None] = (None, None)
        for k, v in node.value:  # the last one wins, as in the constructed dict
            if isinstance(k, ScalarNode) and k.value == key:
                found = (k, v)
        return found
    if isinstance(node, SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return None, node.value[key]
    return None, None


def position(node: Node | None, path: Sequence[str | int], *, key: bool = False) -> str:
    """' (line L, column C)' of the value at path (or of its key), else of the nearest
    enclosing node that exists; '' without a node tree."""
    if node is None:
        return ""
    best: Node = node
    for part in path:
        k, v = child(best, part)
        if v is None:
            break
        best = k if (key and k is not None and part == path[-1]) else v
    mark = best.start_mark
    return f" (line {mark.line + 1}, column {mark.column + 1})"
