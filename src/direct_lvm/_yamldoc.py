"""The YAML half of reading a config (configfile.py is the other): PyYAML's SafeLoader
refusing a repeated mapping key, the document with the node tree it came from, and a
field's line and column in that tree. Imported only when a config text is parsed (or an
error names a position): a converged run whose config text the render record already
holds as parsed imports no PyYAML (spec.read_mapping)."""

from __future__ import annotations

from collections.abc import Sequence

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigError

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any


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
