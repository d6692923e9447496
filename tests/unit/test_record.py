"""Record's __eq__, __hash__ and __repr__ against the ones @dataclass(frozen=True)
generates, on twins with the same fields (compare=False and repr=False ones included),
and on the package's own records."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from direct_lvm import _record
from direct_lvm._record import Record
from direct_lvm.devices import Selector
from direct_lvm.probe import LV, PV, VG, LvmState


@dataclass(frozen=True)
class Plain:
    a: int
    b: tuple[str, ...] = ()
    note: dict[str, str] | None = field(default=None, compare=False)
    hidden: str = field(default="", repr=False)


@dataclass(frozen=True, eq=False, repr=False)
class Fast(Record):
    a: int
    b: tuple[str, ...] = ()
    note: dict[str, str] | None = field(default=None, compare=False)
    hidden: str = field(default="", repr=False)


@dataclass(frozen=True, eq=False, repr=False)
class Other(Record):
    a: int
    b: tuple[str, ...] = ()
    note: dict[str, str] | None = field(default=None, compare=False)
    hidden: str = field(default="", repr=False)


CASES = [
    ((1,), (1,)),
    ((1, ("x",)), (1, ("x",))),
    ((1, ("x",), {"k": "v"}), (1, ("x",), None)),  # compare=False: equal
    ((1, (), None, "h"), (1, (), None, "other")),  # hidden is compared
    ((1,), (2,)),
]


@pytest.mark.parametrize("left,right", CASES)
def test_record_methods_are_dataclasses_own(left, right):
    p1, p2, f1, f2 = Plain(*left), Plain(*right), Fast(*left), Fast(*right)
    assert (f1 == f2) is (p1 == p2)
    assert (f1 != f2) is (p1 != p2)
    if p1 == p2:
        assert hash(f1) == hash(f2)
    assert hash(f1) == hash(p1)  # the same tuple hashed
    assert repr(f1).replace("Fast", "Plain", 1) == repr(p1)
    assert f1 != Other(*left)  # another class, same fields: not equal (NotImplemented)
    assert f1 != p1 and (f1 == 1) is False


def test_frozen_replace_and_sets_still_work():
    f = Fast(1, ("x",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.a = 2  # type: ignore[misc]
    assert dataclasses.replace(f, a=2) == Fast(2, ("x",))
    assert len({f, Fast(1, ("x",)), Fast(2)}) == 2
    assert _record._names(Fast) == (("a", "b", "hidden"), ("a", "b", "note"))


def test_the_package_records_compare_as_before():
    s1, s2 = Selector(serial="S1", text={"serial": "S1"}), Selector(serial="S1")
    assert s1 == s2 and hash(s1) == hash(s2)  # text is compare=False
    assert repr(s2).startswith("Selector(id='', serial='S1', ")
    pv = PV("/dev/vdb", "u", "docker", 4, 3)
    vg = VG("docker", "u", 4, 1, 1, 4, 1, frozenset({"t"}))
    lv = LV("docker", "thinpool", "u", "twi-a-tz--", 1, 1, 0.0, 0.0, "p", frozenset(), "queue",
            "thin-pool", 512, False, "monitored")  # fmt: skip
    state = LvmState(pvs=(pv,), vgs=(vg,), lvs=(lv,))
    assert state == LvmState(pvs=(pv,), vgs=(vg,), lvs=(lv,))
    assert state != LvmState(pvs=(pv,), vgs=(vg,))
    assert {lv: 1}[dataclasses.replace(lv)] == 1
