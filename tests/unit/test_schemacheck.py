"""schemacheck (our Draft 7 validation, no jsonschema import) against jsonschema's own
Draft7Validator, over generated configs: the same errors, in the same order, with the
same fields spec.py reads. jsonschema stays a test dependency for this comparison."""

import copy
import random

import pytest

from direct_lvm import schemacheck, spec

jsonschema = pytest.importorskip("jsonschema")

BAD = [None, True, False, 0, 1, -1, 1.5, 80.0, 10**20, "", "x", "auto", "12Q", "512K",
       "1.5G", "/dev/vdb", "/dev/../x", ".", "..", "-a", "a b", "x" * 300, "\n", [], ["a"],
       [1, 1], {}, {"a": 1}, {"serial": "vol1"}, {"first_empty": True}]  # fmt: skip

GOOD = [
    {"devices": ["/dev/vdb"]},
    {"devices": ["/dev/vdb", {"serial": "vol-1", "min_size": "1G", "max_size": "2T"},
                 {"first_empty": True}, {"id": "/dev/disk/by-id/virtio-a"}, {"wwn": "0x5"},
                 {"size": "10G"}],
     "runtime": "containerd-devmapper", "vg": "v", "pool": "p", "data_percent": 50,
     "metadata_size": "1G", "chunk_size": "64K", "zero": True,
     "autoextend": {"threshold": 100, "percent": 1}, "wipe_signatures": True,
     "wait_timeout": 0.5, "error_when_full": True, "zero_metadata": False,
     "containerd": {"root_path": "/a", "base_image_size": "1G", "async_remove": True,
                    "discard_blocks": False, "fs_type": "xfs", "fs_options": "-m crc=1"}},
    {"devices": ["/dev/vdb"], "runtime": "docker-overlay2",
     "overlay2": {"lv": "d", "container_size": "1G"}},
]  # fmt: skip

FIELDS = [
    ("runtime",), ("devices",), ("devices", 0), ("vg",), ("pool",), ("data_percent",),
    ("metadata_size",), ("chunk_size",), ("zero",), ("autoextend",),
    ("autoextend", "threshold"), ("autoextend", "percent"), ("wipe_signatures",),
    ("wait_timeout",), ("error_when_full",), ("zero_metadata",), ("containerd",),
    ("containerd", "root_path"),
    ("containerd", "base_image_size"), ("containerd", "async_remove"),
    ("containerd", "fs_type"), ("containerd", "fs_options"), ("overlay2",),
    ("overlay2", "lv"), ("overlay2", "container_size"), ("unknown",), ("devices", 1),
    ("devices", 1, "serial"), ("devices", 1, "size"), ("devices", 1, "first_empty"),
    ("devices", 1, "bogus"), ("devices", 1, "id"),
]  # fmt: skip


def _set(doc, path, value):
    """doc with the field at path set to value (made on the way); None when the way is
    blocked by a value of another type."""
    out = copy.deepcopy(doc)
    node = out
    for part in path[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list):
                return None
            while len(node) <= part:
                node.append({"serial": f"vol{len(node)}"})
        elif not isinstance(node, dict):
            return None
        else:
            node.setdefault(part, {})
        node = node[part]
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list):
            return None
        while len(node) <= last:
            node.append(f"/dev/vd{'bcdefgh'[len(node)]}")
    elif not isinstance(node, dict):
        return None
    node[last] = value
    return out


def _cases():
    cases = list(GOOD)
    for base in GOOD[:2]:
        for path in FIELDS:
            for value in BAD:
                doc = _set(base, path, value)
                if doc is not None:
                    cases.append(doc)
    rng = random.Random(13)  # noqa: S311 (test data)
    for _ in range(300):  # several faults at once: the order of errors counts
        doc = dict(rng.choice(GOOD))
        for _ in range(rng.randint(2, 5)):
            doc = _set(doc, rng.choice(FIELDS), rng.choice(BAD)) or doc
        cases.append(doc)
    for k in range(3):
        cases.append({"devices": []})
        cases.append({})
        cases.append({"devices": ["/dev/vdb"] * (k + 2)})
    return cases


CASES = _cases()
# jsonschema before 4.21 says "is too short" where 4.21 and we say "should be non-empty"
_NEW_WORDING = any(
    "non-empty" in e.message
    for e in jsonschema.Draft7Validator(spec.schema()).iter_errors({"devices": []})
)


def _fields(error, messages=True):
    return (
        tuple(error.absolute_path),
        error.validator,
        repr(error.validator_value),
        repr(error.instance),
        error.message if messages or error.validator not in _WORDED else "",
        [_fields(e, messages) for e in error.context or []],
        list(error.schema_path)[:1],
    )


_WORDED = ("minItems", "minLength", "minProperties", "not", "additionalProperties")


def test_same_errors_and_problems_as_jsonschema():
    """The errors' fields, and what spec.py makes of them (sorted, described): the same."""
    theirs = jsonschema.Draft7Validator(spec.schema())
    ours = schemacheck.Validator(spec.schema())
    differ = []
    seen = set()
    for doc in CASES:
        errors = list(theirs.iter_errors(doc))
        seen |= {e.validator for e in errors} | {c.validator for e in errors for c in e.context}
        want = [_fields(e, _NEW_WORDING) for e in errors]
        got = [_fields(e, _NEW_WORDING) for e in ours.iter_errors(doc)]
        if want != got:
            differ.append((doc, want, got))
        if _NEW_WORDING:  # (bullseye's 3.2 words a few messages otherwise)
            errors.sort(key=lambda e: list(map(str, e.absolute_path)))
            described = [p.to_json() for e in errors for p in spec._describe(e, doc)]
            if described != [p.to_json() for p in spec.schema_problems(doc)]:
                differ.append((doc, described, spec.schema_problems(doc)))
    assert differ == [], differ[:2]
    assert seen >= set(schemacheck.CHECKS) - {"properties", "items"}, sorted(seen)  # all tried
    assert len(CASES) > 1000


def test_an_unknown_keyword_is_refused():
    with pytest.raises(ValueError, match=r"does not implement keyword\(s\) \['oneOf'\]"):
        schemacheck.Validator({"properties": {"a": {"oneOf": [{"type": "string"}]}}})


def test_equal_keeps_booleans_apart():
    assert schemacheck.equal(1, 1.0) and not schemacheck.equal(True, 1)
    assert schemacheck.equal({"a": [1]}, {"a": [1.0]}) and not schemacheck.equal([0], [False])
    assert not schemacheck._unique([{"a": 1, "b": 2}, {"b": 2, "a": 1}])
    assert schemacheck._unique([1, True, 0, False, "1"])
