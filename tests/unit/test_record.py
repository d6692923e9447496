"""Record's __init__, __eq__, __hash__ and __repr__ against the ones
@dataclass(frozen=True) generates, on twins with the same fields (compare=False and
repr=False ones included), and on the package's own records."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from direct_lvm import _record
from direct_lvm._record import Record, record
from direct_lvm.devices import Selector
from direct_lvm.probe import LV, PV, VG, LvmState


@dataclass(frozen=True)
class Plain:
    a: int
    b: tuple[str, ...] = ()
    note: dict[str, str] | None = field(default=None, compare=False)
    hidden: str = field(default="", repr=False)


@record
class Fast(Record):
    a: int
    b: tuple[str, ...] = ()
    note: dict[str, str] | None = field(default=None, compare=False)
    hidden: str = field(default="", repr=False)


@record
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


@dataclass(frozen=True)
class PlainMade:
    a: int
    items: list[int] = field(default_factory=list)
    b: str = "b"


@record
class Made(Record):
    a: int
    items: list[int] = field(default_factory=list)
    b: str = "b"


@pytest.mark.parametrize(
    "args,kwargs",
    [((1,), {}), ((1, [2]), {}), ((1, [2], "c"), {}), ((), {"a": 1, "b": "c"}),
     ((1,), {"b": "c", "items": [3]})],
)  # fmt: skip
def test_record_init_is_dataclasses_own(args, kwargs):
    made, plain = Made(*args, **kwargs), PlainMade(*args, **kwargs)
    assert repr(made).replace("Made", "PlainMade", 1) == repr(plain)
    assert dataclasses.fields(made) and dataclasses.is_dataclass(made)


def test_record_init_refuses_what_dataclasses_init_refuses():
    for args, kwargs, says in [
        ((), {}, "missing required argument: 'a'"),
        ((1, [], "c", "d"), {}, "takes 3 arguments but 4 were given"),
        ((1,), {"a": 2}, "multiple values for argument 'a'"),
        ((1,), {"c": 2}, "unexpected keyword argument 'c'"),
    ]:
        with pytest.raises(TypeError, match=says):
            Made(*args, **kwargs)
        with pytest.raises(TypeError):
            PlainMade(*args, **kwargs)


def test_record_defaults_come_from_the_factory_each_time():
    one, two = Made(1), Made(1)
    assert one.items == [] and one.items is not two.items
    with pytest.raises(dataclasses.FrozenInstanceError):
        del one.a
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.b = "x"  # type: ignore[misc]
