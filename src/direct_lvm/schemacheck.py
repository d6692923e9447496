"""JSON Schema (Draft 7) validation of the keywords direct_lvm.schema.json uses, without
jsonschema, whose import alone costs 60-90 ms on every run (issue 13).

The schema stays the one source: this module reads it as it is and refuses, when built,
a schema with a keyword it does not implement. It follows jsonschema 4's Draft7Validator
in what is valid, in the order errors come (schema keyword order), and in every error's
fields that spec.py reads (message, validator, validator_value, instance, absolute_path,
schema_path, context) and in the messages' wording; tests/unit/test_schemacheck.py
compares the two over generated configs whenever jsonschema is installed."""

from __future__ import annotations

import re
from collections.abc import Iterator

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any, Callable

    Path = tuple[Any, ...]

# Keywords that validate (implemented below) and those that only annotate.
ANNOTATIONS = frozenset(
    {"$schema", "$id", "title", "description", "default", "examples", "definitions"}
)


class SchemaError:
    """One failed keyword: the fields of jsonschema.ValidationError that spec.py reads."""

    def __init__(
        self,
        message: str,
        validator: str,
        validator_value: Any,
        instance: Any,
        path: Path,
        context: list[SchemaError] | None = None,
    ) -> None:
        self.message = message
        self.validator = validator
        self.validator_value = validator_value
        self.instance = instance
        self.absolute_path: list[Any] = list(path)
        self.schema_path: list[Any] = []  # relative, as jsonschema's (descend fills it)
        self.context: list[SchemaError] = context or []

    def __repr__(self) -> str:
        return f"<SchemaError {self.validator} at {self.absolute_path}: {self.message}>"


def _unbool(x: Any) -> Any:
    """True and 1 (False and 0) are different JSON values."""
    return ("bool", x) if isinstance(x, bool) else x


def equal(one: Any, two: Any) -> bool:
    """JSON equality: booleans are not numbers, lists compare in order, mappings not."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, (list, tuple)) and isinstance(two, (list, tuple)):
        return len(one) == len(two) and all(equal(a, b) for a, b in zip(one, two))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(equal(one[k], two[k]) for k in one)
    return bool(_unbool(one) == _unbool(two))


def _identity(x: Any) -> Any:
    """A hashable value equal for equal() values (1 and 1.0 alike, True apart)."""
    if isinstance(x, dict):
        return ("object", frozenset((k, _identity(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return ("array", tuple(_identity(v) for v in x))
    return _unbool(x)


def _unique(items: list[Any]) -> bool:
    seen = set()
    for item in items:
        key = _identity(item)
        if key in seen:
            return False
        seen.add(key)
    return True


def is_type(instance: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(instance, dict)
    if kind == "array":
        return isinstance(instance, list)
    if kind == "string":
        return isinstance(instance, str)
    if kind == "boolean":
        return isinstance(instance, bool)
    if kind == "null":
        return instance is None
    if isinstance(instance, bool):
        return False
    if kind == "integer":  # Draft 6 on: 1.0 is an integer
        return isinstance(instance, int) or isinstance(instance, float) and instance.is_integer()
    if kind == "number":
        return isinstance(instance, (int, float))
    raise ValueError(f"unknown JSON Schema type {kind!r}")


if TYPE_CHECKING:
    Check = Callable[["Validator", Any, Any, dict[str, Any], Path], Iterator[SchemaError]]


class Validator:
    """Draft7Validator(schema).iter_errors(instance), for the keywords in CHECKS."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.root = schema
        self._patterns: dict[str, re.Pattern[str]] = {}
        unknown = sorted(_keywords(schema) - ANNOTATIONS - set(CHECKS) - {"$ref"})
        if unknown:
            raise ValueError(f"schemacheck does not implement keyword(s) {unknown}")

    def iter_errors(self, instance: Any) -> Iterator[SchemaError]:
        return self.descend(instance, self.root, ())

    def is_valid(self, instance: Any, schema: dict[str, Any]) -> bool:
        return next(self.descend(instance, schema, ()), None) is None

    def descend(self, instance: Any, schema: dict[str, Any], path: Path) -> Iterator[SchemaError]:
        if "$ref" in schema:  # Draft 7: a $ref's siblings are ignored
            yield from self.descend(instance, self.resolve(schema["$ref"]), path)
            return
        for keyword, value in schema.items():
            check = CHECKS.get(keyword)
            if check is None:
                continue
            for error in check(self, value, instance, schema, path):
                error.schema_path.insert(0, keyword)
                yield error

    def resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#/"):
            raise ValueError(f"schemacheck resolves local references only, not {ref!r}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return dict(node)

    def pattern(self, regex: str) -> re.Pattern[str]:
        compiled = self._patterns.get(regex)
        if compiled is None:
            compiled = self._patterns[regex] = re.compile(regex)
        return compiled


def _keywords(schema: Any) -> set[str]:
    """Every keyword used anywhere in a schema (values of enum/const/default skipped)."""
    found: set[str] = set()
    if not isinstance(schema, dict):
        return found
    for key, value in schema.items():
        found.add(key)
        if key in ("properties", "definitions"):
            for sub in value.values():
                found |= _keywords(sub)
        elif key in ("anyOf", "allOf", "oneOf") and isinstance(value, list):
            for sub in value:
                found |= _keywords(sub)
        elif key in ("items", "not", "additionalProperties") and isinstance(value, dict):
            found |= _keywords(value)
    return found


def _leaf(keyword: str, message: str, value: Any, instance: Any, path: Path) -> SchemaError:
    return SchemaError(message, keyword, value, instance, path)


def _type(
    v: Validator, types: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    kinds = [types] if isinstance(types, str) else list(types)
    if not any(is_type(instance, k) for k in kinds):
        reprs = ", ".join(repr(k) for k in kinds)
        yield _leaf("type", f"{instance!r} is not of type {reprs}", types, instance, path)


def _enum(
    v: Validator, enums: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if all(not equal(each, instance) for each in enums):
        yield _leaf("enum", f"{instance!r} is not one of {enums!r}", enums, instance, path)


def _const(
    v: Validator, const: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if not equal(instance, const):
        yield _leaf("const", f"{const!r} was expected", const, instance, path)


def _minimum(
    v: Validator, low: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if is_type(instance, "number") and instance < low:
        message = f"{instance!r} is less than the minimum of {low!r}"
        yield _leaf("minimum", message, low, instance, path)


def _maximum(
    v: Validator, high: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if is_type(instance, "number") and instance > high:
        message = f"{instance!r} is greater than the maximum of {high!r}"
        yield _leaf("maximum", message, high, instance, path)


def _min_length(
    v: Validator, n: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if isinstance(instance, str) and len(instance) < n:
        word = "should be non-empty" if n == 1 else "is too short"
        yield _leaf("minLength", f"{instance!r} {word}", n, instance, path)


def _max_length(
    v: Validator, n: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if isinstance(instance, str) and len(instance) > n:
        word = "is expected to be empty" if n == 0 else "is too long"
        yield _leaf("maxLength", f"{instance!r} {word}", n, instance, path)


def _pattern(
    v: Validator, regex: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if isinstance(instance, str) and not v.pattern(regex).search(instance):
        yield _leaf("pattern", f"{instance!r} does not match {regex!r}", regex, instance, path)


def _min_items(
    v: Validator, n: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if isinstance(instance, list) and len(instance) < n:
        word = "should be non-empty" if n == 1 else "is too short"
        yield _leaf("minItems", f"{instance!r} {word}", n, instance, path)


def _unique_items(
    v: Validator, on: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if on and isinstance(instance, list) and not _unique(instance):
        message = f"{instance!r} has non-unique elements"
        yield _leaf("uniqueItems", message, on, instance, path)


def _items(
    v: Validator, items: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if not isinstance(instance, list):
        return
    if not isinstance(items, dict):
        raise ValueError("schemacheck implements `items` as one schema only")
    for index, item in enumerate(instance):
        yield from v.descend(item, items, (*path, index))


def _min_properties(
    v: Validator, n: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if isinstance(instance, dict) and len(instance) < n:
        word = "should be non-empty" if n == 1 else "does not have enough properties"
        yield _leaf("minProperties", f"{instance!r} {word}", n, instance, path)


def _required(
    v: Validator, names: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if not isinstance(instance, dict):
        return
    for name in names:
        if name not in instance:
            yield _leaf("required", f"{name!r} is a required property", names, instance, path)


def _properties(
    v: Validator, props: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if not isinstance(instance, dict):
        return
    for name, sub in props.items():
        if name in instance:
            for error in v.descend(instance[name], sub, (*path, name)):
                error.schema_path.insert(0, name)
                yield error


def _additional(
    v: Validator, allowed: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if not isinstance(instance, dict):
        return
    if "patternProperties" in schema or isinstance(allowed, dict):
        raise ValueError("schemacheck implements additionalProperties: false only")
    known = schema.get("properties", {})
    extras = sorted((k for k in instance if k not in known), key=str)
    if allowed is False and extras:
        verb = "was" if len(extras) == 1 else "were"
        listed = ", ".join(repr(k) for k in extras)
        message = f"Additional properties are not allowed ({listed} {verb} unexpected)"
        yield _leaf("additionalProperties", message, allowed, instance, path)


def _any_of(
    v: Validator, subs: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    context: list[SchemaError] = []
    for index, sub in enumerate(subs):
        errors = list(v.descend(instance, sub, path))
        if not errors:
            return
        for error in errors:
            error.schema_path.insert(0, index)
        context.extend(errors)
    message = f"{instance!r} is not valid under any of the given schemas"
    yield SchemaError(message, "anyOf", subs, instance, path, context)


def _not(
    v: Validator, sub: Any, instance: Any, schema: dict[str, Any], path: Path
) -> Iterator[SchemaError]:
    if v.is_valid(instance, sub):
        message = f"{instance!r} should not be valid under {sub!r}"
        yield _leaf("not", message, sub, instance, path)


CHECKS: dict[str, Check] = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    "minimum": _minimum,
    "maximum": _maximum,
    "minLength": _min_length,
    "maxLength": _max_length,
    "pattern": _pattern,
    "minItems": _min_items,
    "uniqueItems": _unique_items,
    "items": _items,
    "minProperties": _min_properties,
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional,
    "anyOf": _any_of,
    "not": _not,
}
