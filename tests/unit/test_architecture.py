"""The structure the code promises (ARCHITECTURE.md): the step vocabulary, the runtime
table and its schema."""

from __future__ import annotations

import pytest

from direct_lvm import runtimes, spec
from direct_lvm.steps import Action, Kind, PlanBuilder


def test_every_runtime_in_the_table_is_in_the_schema_and_back():
    enum = spec.schema()["properties"]["runtime"]["enum"]
    assert enum == [str(r) for r in runtimes.Runtime]
    assert set(runtimes.TABLE) == set(runtimes.Runtime)
    for section in runtimes.section_owners():
        assert section in spec.schema()["properties"]


def test_builder_keeps_order_and_kinds():
    b = PlanBuilder()
    b.run("r1", "vgcreate", "vg", "/dev/vdb", kind=Kind.LVM)
    b.write("w1", "/etc/x", "x\n")
    b.run("moved", "mv", "--no-target-directory", "/a", "/a.bak", kind=Kind.MOVE_ASIDE)
    b.fact("f")
    b.note("n")
    p = b.build()
    assert [s.action for s in p.steps] == [Action.RUN, Action.WRITE, Action.RUN]
    assert [s.kind for s in p.steps] == [Kind.LVM, Kind.FILE, Kind.MOVE_ASIDE]
    assert [s.kept_at for s in p.steps] == [None, None, "/a.bak"]
    assert (p.facts, p.notes) == (("f",), ("n",))
    assert p.steps[1].to_json()["mode"] == "0o644"
    with pytest.raises(ValueError):
        b.run("no", "true", kind=Kind.FILE)
