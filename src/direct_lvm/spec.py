"""The `direct_lvm` config: loaded from YAML, validated against the one JSON Schema,
turned into a frozen Spec with defaults filled in."""

from __future__ import annotations

import json
import math
import posixpath
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from . import runtimes
from ._record import Record, record
from .configfile import child, load_yaml, position, read_config
from .devices import SELECTOR_KEYS as DEVICE_SELECTOR_KEYS
from .devices import Selector
from .errors import ConfigError
from .model import Autoextend
from .model import Spec as Spec
from .runtimes import Runtime as Runtime
from .schemacheck import SchemaError, Validator
from .units import (
    MAX_METADATA,
    MIN_METADATA,
    chunk_size_problem,
    dm_name_problem,
    format_size,
    lvm_name_problem,
    parse_size,
)

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any

    from yaml.nodes import Node

CONFIG_KEY = "direct_lvm"


@cache
def schema() -> dict[str, Any]:
    # a plain file next to this module (importlib.resources would cost ~10 ms of imports)
    text = (Path(__file__).parent / "schema" / "direct_lvm.schema.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def validator() -> Validator:
    """Draft 7 validation of the schema's keywords (schemacheck: jsonschema's import
    alone would cost more than the rest of a converged run's imports)."""
    return Validator(schema())


def _field_schema(path: list[str | int]) -> dict[str, Any]:
    """The schema node for a field path, following properties/items/$ref."""
    root = schema()
    node: dict[str, Any] = root
    for part in path:
        if "$ref" in node:
            node = root["definitions"][node["$ref"].rsplit("/", 1)[1]]
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            for branch in node.get("anyOf", []):
                if "$ref" in branch:
                    branch = root["definitions"][branch["$ref"].rsplit("/", 1)[1]]
                if part in branch.get("properties", {}):
                    node = branch
            node = node.get("properties", {}).get(part, {})
    return node


def _dotted(path: list[str | int]) -> str:
    out = CONFIG_KEY
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _device_entry_errors(error: SchemaError) -> list[SchemaError]:
    """A devices entry matched neither a path nor a selector: the errors of the branch
    its type was meant for."""
    if isinstance(error.instance, str):
        want = 0
    elif isinstance(error.instance, dict):
        want = 1
    else:
        return []
    return [e for e in error.context or [] if e.schema_path and e.schema_path[0] == want]


@record
class Problem(Record):
    """One thing wrong with a config: the field, its value, what is wrong, the fix."""

    field: str
    value: Any
    message: str
    fix: str

    def text(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value, "message": self.message, "fix": self.fix}


def _is_lvm_name(path: list[str | int]) -> bool:
    """The VG, the pool, or a runtime section's LV."""
    return path in (["vg"], ["pool"]) or (
        len(path) == 2 and path[0] in runtimes.section_owners() and path[1] == "lv"
    )


def _describe(error: SchemaError, data: Any = None) -> list[Problem]:
    path = list(error.absolute_path)
    where = _dotted(path)
    at = _at(data, path) if isinstance(data, dict) else ""
    value = error.instance
    if error.validator == "anyOf" and len(path) == 2 and path[0] == "devices":
        subs = _device_entry_errors(error)
        if subs:
            return [p for e in subs for p in _describe(e, data)]
        return [
            Problem(
                where,
                value,
                f"{where}: {json.dumps(value)} is neither a device path nor a selector{at}",
                "write an absolute path such as /dev/vdb, or a mapping such as "
                "{serial: vol0abc} or {first_empty: true}",
            )
        ]
    if error.validator == "additionalProperties":
        node = _field_schema(path)
        if len(path) == 2 and path[0] == "devices":
            node = schema()["definitions"]["device_selector"]
        allowed = sorted(node.get("properties", {}))
        instance: dict[str, Any] = error.instance
        extra = sorted(set(instance) - set(allowed), key=str)
        at = _at(data, [*path, extra[0]], key=True) if extra and isinstance(data, dict) else at
        return [
            Problem(
                where,
                extra[0] if len(extra) == 1 else extra,
                f"{where}: unknown key(s) {', '.join(map(repr, extra))}{at}",
                f"remove them or use one of: {', '.join(allowed)}",
            )
        ]
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else ""
        example = _example([*path, missing]) if missing else ""
        return [
            Problem(
                _dotted([*path, missing]) if missing else where,
                None,
                f"{where}: {error.message}{at}",
                "add it"
                + (f", e.g. `{example}`" if example else "")
                + " (`direct-lvm validate --help` lists every field)",
            )
        ]
    if _is_lvm_name(path) and isinstance(value, str):
        problem = lvm_name_problem(value, lv=path != ["vg"])
        if problem:
            rule = f"breaks lvm2's naming rules: it {problem[0]}"
            return [Problem(where, value, f"{where}: {json.dumps(value)} {rule}{at}", problem[1])]
    field = _field_schema(path)
    hint = ""
    is_size = _is_size(path)
    if error.validator == "type":
        want: Any = error.validator_value
        wants = [want] if isinstance(want, str) else list(want)
        example = _example(path)
        hint = "write " + " or ".join(TYPE_WORDS.get(w, w) for w in wants)
        if is_size:
            hint = f"write a size: {SIZE_HINT}"
        hint += f", e.g. `{example}`" if example else ""
    elif is_size and error.validator in ("pattern", "anyOf"):
        hint = SIZE_HINT
        if path and path[-1] == "metadata_size":
            hint = "write 'auto' or a size; " + hint
    elif error.validator == "enum":
        choices: list[Any] = error.validator_value
        hint = "use one of: " + ", ".join(map(str, choices))
    elif error.validator == "pattern" and len(path) == 2 and path[0] == "devices":
        hint = (
            "give an absolute path under /dev such as /dev/vdb or /dev/disk/by-id/...; "
            "spaces, quotes and shell characters are not allowed"
        )
    elif error.validator == "pattern" and len(path) == 3 and path[0] == "devices":
        hint = (
            "letters, digits and . _ : + @ = - only; spaces, quotes and shell "
            "characters are not allowed"
        )
    elif error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        lo, hi = field.get("minimum"), field.get("maximum")
        span = f"between {lo} and {hi}" if lo is not None and hi is not None else ""
        example = _example(path)
        hint = f"use a value {span}".rstrip() + (f", e.g. `{example}`" if example else "")
    elif error.validator == "uniqueItems":
        hint = "list each entry once"
    elif error.validator == "const" and path and path[-1] == "first_empty":
        hint = "write first_empty: true, or leave the key out"
    elif error.validator == "minProperties" and path and path[0] == "devices":
        hint = "give at least one of: " + ", ".join(DEVICE_SELECTOR_KEYS)
    elif error.validator == "minItems" and path == ["devices"]:
        hint = "list at least one device, e.g. `devices: [/dev/vdb]`"
    else:
        example = _example(path)
        hint = f"e.g. `{example}`" if example else field.get("description", "")
    what = error.message
    if error.validator == "pattern":  # never show the raw regex
        what = "it is not a size" if is_size else "it has characters or a form not allowed here"
    elif is_size and error.validator == "anyOf":
        what = "it is not 'auto' or a size"
    message = f"{where}: {json.dumps(value)} is invalid: {what}{at}"
    return [Problem(where, value, message, hint)]


def _is_size(path: list[str | int]) -> bool:
    return bool(path) and path[-1] in (
        "chunk_size",
        "metadata_size",
        "base_image_size",
        "container_size",
        "size",
        "min_size",
        "max_size",
    )


def schema_problems(data: dict[str, Any]) -> list[Problem]:
    """Every schema error of data, described (in field order)."""
    errors = sorted(validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    return [p for e in errors for p in _describe(e, data)]


def _config_error(problems: list[Problem]) -> ConfigError:
    first = problems[0]
    return ConfigError(
        "invalid configuration:\n" + "\n".join(p.text() for p in problems),
        field=first.field,
        value=first.value,
        fix=first.fix,
        problems=[p.to_json() for p in problems],
    )


def _fill_defaults(node: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for key, sub in node.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = sub["default"]
        if sub.get("type") == "object" and isinstance(out.get(key), dict):
            out[key] = _fill_defaults(sub, out[key])
    return out


class ConfigMapping(dict):  # type: ignore[type-arg]
    """The direct_lvm mapping as read from a file: a plain dict that also knows the YAML
    node it came from, so errors can name a field's line and column."""

    node: Node | None = None

    def at(self, path: Sequence[str | int], *, key: bool = False) -> str:
        return position(self.node, path, key=key)


def _at(data: dict[str, Any], path: Sequence[str | int], *, key: bool = False) -> str:
    return data.at(path, key=key) if isinstance(data, ConfigMapping) else ""


def extract_mapping(doc: Any, source: str, node: Node | None = None) -> dict[str, Any]:
    """Accept a whole cloud-config (with a `direct_lvm` key) or just the mapping."""
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{source}: expected a mapping, got {type(doc).__name__}",
            f"write a YAML mapping with a `{CONFIG_KEY}:` key (a cloud-config) "
            "or the direct_lvm fields at top level",
        )
    if CONFIG_KEY in doc:
        mapping = doc[CONFIG_KEY]
        key_node, node = child(node, CONFIG_KEY)
        if not isinstance(mapping, dict):
            raise ConfigError(
                f"{source}: `{CONFIG_KEY}` must be a mapping, got {json.dumps(mapping)}"
                + position(key_node, []),
                "put the fields (devices, vg, pool, ...) under it",
                field=CONFIG_KEY,
                value=mapping,
            )
    else:
        mapping = doc
    out = ConfigMapping(mapping)
    out.node = node
    return out


def parse_text(text: str, source: str = "<config>") -> dict[str, Any]:
    """The direct_lvm mapping of a YAML text (a cloud-config or the bare mapping)."""
    document = load_yaml(text, source)
    if document.data is None:
        raise ConfigError(f"{source}: the file is empty", f"add a `{CONFIG_KEY}:` mapping")
    return extract_mapping(document.data, source, document.node)


def _parse_key(text: str) -> str | None:
    """The render record's key for the parse of text: the text and everything the
    parse depends on (our version, the parsing modules' source, PyYAML's install);
    None when a source cannot be read (then nothing is kept)."""
    from . import __version__
    from .render import digest, install_identity

    here = Path(__file__).parent
    try:
        sources = [(here / name).read_text() for name in ("configfile.py", "_yamldoc.py")]
    except OSError:
        return None
    return digest("config-parse", __version__, *sources, install_identity("yaml"), text)


def _plain(data: Any) -> bool:
    """data is what JSON gives back unchanged: str-keyed dicts, lists, strings, ints,
    finite floats, booleans, None (YAML can also give dates, sets, int keys...)."""
    if isinstance(data, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in data.items())
    if isinstance(data, list):
        return all(_plain(v) for v in data)
    if isinstance(data, float):
        return math.isfinite(data)
    return data is None or isinstance(data, (str, int, bool))


def read_mapping(text: str, source: str) -> dict[str, Any]:
    """parse_text, answered from the render record (render.remember) when this exact
    text was parsed before by the same parser: a parse is a function of the text and the
    parser only, so the record holds it under a key of both (_parse_key), as it holds
    renderings, and a converged run imports no PyYAML. Only the JSON-exact mapping of
    a valid config is kept (an invalid one is parsed on every run, so its errors name
    their line). Validation is not kept: it runs on what this returns, on every run."""
    from .render import keep, recall

    key = _parse_key(text)
    held = recall(key) if key is not None else None
    if held is not None:
        try:
            data = json.loads(held)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
    mapping = parse_text(text, source)
    if key is not None and _plain(mapping):
        try:
            from_mapping(mapping)
        except ConfigError:
            return mapping
        keep(key, json.dumps(mapping))
    return mapping


def load_file(path: str | Path) -> Spec:
    """Read (size-capped, UTF-8, no duplicate keys), parse and validate a config file."""
    text = read_config(path)
    mapping = read_mapping(text, str(path))
    try:
        return from_mapping(mapping)
    except ConfigError:
        if isinstance(mapping, ConfigMapping):
            raise
        # from the record: parse again, so that the error names the line and column
        return from_mapping(parse_text(text, str(path)))


def _non_finite(data: Any, path: list[str | int], seen: set[int]) -> list[str | int] | None:
    """The path of the first .nan/.inf number in data (YAML has them; JSON Schema's
    minimum/maximum let a NaN through)."""
    if isinstance(data, float) and not math.isfinite(data):
        return path
    if isinstance(data, (dict, list)):
        if id(data) in seen:  # YAML aliases: visit each container once
            return None
        seen.add(id(data))
        items = data.items() if isinstance(data, dict) else enumerate(data)
        for k, v in items:
            found = _non_finite(v, [*path, k], seen)
            if found is not None:
                return found
    return None


def _yaml_float(x: float) -> str:
    """.nan, .inf, -.inf: how YAML spells a non-finite float."""
    return ".nan" if math.isnan(x) else (".inf" if x > 0 else "-.inf")


def _at_path(data: Any, path: list[str | int]) -> Any:
    for part in path:
        data = data[part]
    return data


def _example(path: Sequence[str | int]) -> str:
    """A one-line example of the field at path: its default, or a typical value."""
    field = _field_schema(list(path))
    name = str(path[-1]) if path and isinstance(path[-1], str) else "value"
    if name in EXAMPLES:
        return EXAMPLES[name]
    if "default" in field and not isinstance(field["default"], dict):
        return f"{name}: {json.dumps(field['default'])}"
    return ""


# One-line examples for fields without a default (and those whose default says little).
EXAMPLES = {
    "devices": "devices: [/dev/vdb]",
    "size": "size: 100G",
    "min_size": "min_size: 50G",
    "max_size": "max_size: 2T",
    "serial": "serial: vol0123456789abcdef0",
    "id": "id: virtio-data1",
    "wwn": 'wwn: "0x5000c500a1b2c3d4"',
    "container_size": "container_size: 10G",
    "autoextend": "autoextend: {threshold: 80, percent: 20}",
    "containerd": "containerd: {base_image_size: 10G}",
    "overlay2": "overlay2: {lv: docker}",
}

TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
}
SIZE_HINT = "sizes are like 512K, 64M, 1G (K/M/G/T, powers of 1024)"


def _check_names(d: dict[str, Any], data: dict[str, Any], lv_path: list[str | int]) -> None:
    """lvm2's naming rules (units.lvm_name_problem) for the VG and every LV name, and the
    length of the device-mapper names they make. `lv_path`: where the config names the
    runtime's LV (the pool, or its section's lv)."""
    names: list[tuple[list[str | int], str, bool]] = [
        (["vg"], d["vg"], False),
        (lv_path, _at_path(d, lv_path), True),
    ]
    for path, name, is_lv in names:
        problem = lvm_name_problem(name, lv=is_lv)
        if problem:
            raise ConfigError(
                f"{_dotted(path)}: {json.dumps(name)} breaks lvm2's naming rules: it {problem[0]}"
                + _at(data, path),
                problem[1],
                field=_dotted(path),
                value=name,
            )
    too_long = dm_name_problem(d["vg"], names[1][1], pool=lv_path == ["pool"])
    if too_long:
        raise ConfigError(
            f"{_dotted(lv_path)}: {json.dumps(names[1][1])} with vg {json.dumps(d['vg'])} "
            f"{too_long[0]}" + _at(data, lv_path),
            too_long[1],
            field=_dotted(lv_path),
            value=names[1][1],
        )


def from_mapping(data: dict[str, Any]) -> Spec:
    bad = _non_finite(data, [], set())
    if bad is not None:
        number = _at_path(data, bad)
        raise ConfigError(
            f"{_dotted(bad)}: {_yaml_float(number)} is not a finite number" + _at(data, bad),
            "write a plain number" + (f", e.g. `{_example(bad)}`" if _example(bad) else ""),
            field=_dotted(bad),
            value=_yaml_float(number),
        )
    problems = schema_problems(data)
    if problems:
        raise _config_error(problems)
    d = _fill_defaults(schema(), data)
    rt = runtimes.get(d["runtime"])
    lv_path: list[str | int] = list(rt.lv_field())
    _check_names(d, data, lv_path)
    if rt.default_data_percent is not None and "data_percent" not in data:
        d["data_percent"] = rt.default_data_percent
    chunk = parse_size(d["chunk_size"])
    problem = chunk_size_problem(chunk)
    if problem:
        raise ConfigError(
            f"{CONFIG_KEY}.chunk_size: {d['chunk_size']!r} {problem}",
            "use a multiple of 64K between 64K and 1G, e.g. 512K (the default)",
            field=f"{CONFIG_KEY}.chunk_size",
            value=d["chunk_size"],
        )
    meta = None if d["metadata_size"] == "auto" else parse_size(d["metadata_size"])
    if meta is not None and meta < MIN_METADATA:
        raise ConfigError(
            f"{CONFIG_KEY}.metadata_size: {d['metadata_size']!r} is below LVM's minimum of 2M",
            "use 'auto' or a size of at least 2M",
            field=f"{CONFIG_KEY}.metadata_size",
            value=d["metadata_size"],
        )
    if meta is not None and meta > MAX_METADATA:
        raise ConfigError(
            f"{CONFIG_KEY}.metadata_size: {d['metadata_size']!r} is above LVM's maximum of 15.8G",
            "use 'auto' or a size of at most 15G",
            field=f"{CONFIG_KEY}.metadata_size",
            value=d["metadata_size"],
        )
    labels: list[str] = []
    selectors: list[Selector] = []
    for i, dev in enumerate(d["devices"]):
        if isinstance(dev, dict):
            sel = _selector(i, dev)
            if sel.label in labels:
                raise ConfigError(
                    f"{CONFIG_KEY}.devices[{i}]: {json.dumps(dev)} repeats an earlier entry",
                    "list each device once",
                )
            selectors.append(sel)
            labels.append(sel.label)
            continue
        norm = posixpath.normpath(dev)
        if norm != dev or "/../" in dev or dev.endswith("/.."):
            raise ConfigError(
                f"{CONFIG_KEY}.devices[{i}]: {dev!r} is not a normalized path",
                f"write it as {norm!r}",
            )
        labels.append(dev)
    for section, owner in runtimes.section_owners().items():
        if section in data and d["runtime"] != owner:
            raise ConfigError(
                f"{CONFIG_KEY}.{section}: set, but runtime is {d['runtime']}; "
                f"it applies to runtime {owner} only",
                f"remove {section}, or set runtime: {owner}",
            )
    ae = d["autoextend"]
    return Spec(
        runtime=Runtime(d["runtime"]),
        devices=tuple(labels),
        vg=d["vg"],
        pool=d["pool"],
        data_percent=d["data_percent"],
        metadata_size=meta,
        chunk_size=chunk,
        zero=d["zero"],
        autoextend=Autoextend(threshold=ae["threshold"], percent=ae["percent"]),
        wipe_signatures=d["wipe_signatures"],
        wait_timeout=float(d["wait_timeout"]),
        error_when_full=d["error_when_full"],
        zero_metadata=d["zero_metadata"],
        selectors=tuple(selectors),
        lv=_at_path(d, lv_path),
        options=rt.parse_section(d[rt.section]) if rt.section else None,
    )


def _selector(i: int, entry: dict[str, Any]) -> Selector:
    """A validated selector mapping -> Selector; sizes parsed, the range checked."""
    sizes = {k: parse_size(entry[k]) for k in ("size", "min_size", "max_size") if k in entry}
    lo, hi = sizes.get("min_size"), sizes.get("max_size")
    if lo is not None and hi is not None and lo > hi:
        raise ConfigError(
            f"{CONFIG_KEY}.devices[{i}]: min_size {entry['min_size']!r} is larger than "
            f"max_size {entry['max_size']!r}",
            "swap them, or widen the range",
        )
    if "size" in sizes and len(sizes) > 1:
        raise ConfigError(
            f"{CONFIG_KEY}.devices[{i}]: size {entry['size']!r} is given with min_size/max_size",
            "give either an exact size or a range",
        )
    return Selector(
        id=entry.get("id", ""),
        serial=entry.get("serial", ""),
        wwn=entry.get("wwn", ""),
        size=sizes.get("size"),
        min_size=lo,
        max_size=hi,
        first_empty=bool(entry.get("first_empty", False)),
        text=dict(entry),
    )


def to_mapping(spec: Spec) -> dict[str, Any]:
    """The normalized config with every default spelled out (for render and plan --json)."""
    return {
        "runtime": str(spec.runtime),
        "devices": [e if isinstance(e, str) else e.to_mapping() for e in spec.entries],
        "vg": spec.vg,
        "pool": spec.pool,
        "data_percent": spec.data_percent,
        "metadata_size": "auto" if spec.metadata_size is None else format_size(spec.metadata_size),
        "chunk_size": format_size(spec.chunk_size),
        "zero": spec.zero,
        "autoextend": {"threshold": spec.autoextend.threshold, "percent": spec.autoextend.percent},
        "wipe_signatures": spec.wipe_signatures,
        "wait_timeout": spec.wait_timeout,
        "error_when_full": spec.error_when_full,
        "zero_metadata": spec.zero_metadata,
        **runtimes.get(spec.runtime).section_mapping(spec),
    }
