"""Waiting for late disks (discover.find_devices) with a fake clock: udev settle once,
poll lsblk, a progress line every 5 s, and a timeout error listing the disks seen."""

import contextlib
import dataclasses
import logging

import pytest

from direct_lvm import discover, spec
from direct_lvm.errors import ConfigError, RefusedError
from direct_lvm.probe import PV, VG, BlockDevice, LvmState


def disk(path, size=4 << 30, serial="", **kw):
    return BlockDevice(path=path, real=path, type="disk", size=size, fstype="", pttype="",
                       mountpoints=(), holders=(), is_root_disk=False, read_only=False,
                       serial=serial, **kw)  # fmt: skip


ROOT = dataclasses.replace(disk("/dev/vda", serial="root"), fstype="ext4", mountpoints=("/",),
                           is_root_disk=True)  # fmt: skip


class Clock:
    def __init__(self):
        self.now = 100.0

    def monotonic(self):
        return self.now

    def sleep(self, s):
        self.now += s


@pytest.fixture
def host(monkeypatch):
    """A host whose disk /dev/vdc (serial late) is attached after `arrives` seconds."""
    clock = Clock()
    state = {"arrives": 7.0, "settled": 0}
    start = clock.now

    def probe_block():
        tree = {"/dev/vda": ROOT}
        if clock.now - start >= state["arrives"]:
            tree["/dev/vdc"] = disk("/dev/vdc", serial="late")
        return tree, {"/dev/vdc": ("/dev/disk/by-id/virtio-late",)} if "/dev/vdc" in tree else {}

    def settle(timeout):
        state["settled"] += 1

    monkeypatch.setattr(discover, "time", clock)
    monkeypatch.setattr(discover, "probe_block", probe_block)
    monkeypatch.setattr(discover, "probe_lvm", lambda: LvmState())
    monkeypatch.setattr(discover, "udev_settle", settle)
    monkeypatch.setattr(discover, "resolve", lambda p: "/dev/vdc" if p.endswith("late") else p)
    monkeypatch.setattr(discover, "with_signatures",
                        lambda dev, label, **k: dataclasses.replace(dev, path=label))  # fmt: skip
    return state


def mk(devices, timeout=60):
    return spec.from_mapping({"devices": devices, "wait_timeout": timeout})


@pytest.mark.parametrize("entry", [{"serial": "late"}, "/dev/disk/by-id/virtio-late",
                                   {"first_empty": True}])  # fmt: skip
def test_a_late_disk_is_waited_for_with_progress_lines(host, caplog, entry):
    caplog.set_level(logging.INFO, "direct_lvm")
    found = discover.find_devices(mk([entry]))
    (label,) = found.new
    assert found.new[label].real == "/dev/vdc" and found.resolved[label] == "/dev/vdc"
    assert host["settled"] == 1
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("waiting up to 60 s for ")
    assert sum(m.startswith("still waiting for ") for m in lines) == 1  # at 5 s, found at 7 s
    assert lines[-1].startswith(f"found {label} -> /dev/vdc after 7.0 s")


def test_a_present_disk_needs_no_wait(host, caplog):
    host["arrives"] = 0
    caplog.set_level(logging.INFO, "direct_lvm")
    found = discover.find_devices(mk([{"serial": "late"}]))
    assert list(found.resolved.values()) == ["/dev/vdc"]
    assert host["settled"] == 0 and caplog.records == []


def test_timeout_lists_every_disk_seen_and_the_fix(host, caplog):
    host["arrives"] = 1e9
    caplog.set_level(logging.INFO, "direct_lvm")
    with pytest.raises(RefusedError) as exc:
        discover.find_devices(mk([{"serial": "late"}], timeout=12))
    msg = str(exc.value)
    assert "device(s) not found after waiting 12 s: serial=late" in msg
    assert "block devices seen: /dev/vda (4.00 GiB disk, serial root, ext4, mounted at /)" in msg
    assert "or raise wait_timeout" in msg and exc.value.exit_code == 2
    assert sum("still waiting" in r.getMessage() for r in caplog.records) == 2  # 5 s, 10 s


def test_wait_timeout_0_does_not_wait(host):
    with pytest.raises(RefusedError, match="after waiting 0 s"):
        discover.find_devices(mk(["/dev/vdq"], timeout=0))
    assert host["settled"] == 0


# ------------------------------------------------------------------ converged: no lsblk

PV_A = PV("/dev/vdb", "u1", "docker", 4 << 30, 4 << 30)
PV_B = PV("/dev/vdc", "u2", "docker", 4 << 30, 4 << 30)
OURS = LvmState(pvs=(PV_A, PV_B),
                vgs=(VG("docker", "v", 8 << 30, 0, 4 << 20, 2046, 0, frozenset()),))  # fmt: skip
LINKS = {"/dev/disk/by-id/virtio-a": "/dev/vdb", "/dev/disk/by-id/virtio-b": "/dev/vdc"}


def rec(entry, serial="", vg="docker"):
    return {"vg": vg, "entry": entry, "reason": "r", "serial": serial, "wwn": "", "size": 4 << 30}


@pytest.fixture
def converged(monkeypatch):
    """Our VG on /dev/vdb and /dev/vdc, their by-id links; lsblk counts its calls."""
    calls = {"lsblk": 0}

    def probe_block():
        calls["lsblk"] += 1
        return {p: disk(p) for p in ("/dev/vdb", "/dev/vdc")}, {
            r: (link,) for link, r in LINKS.items()}  # fmt: skip

    monkeypatch.setattr(discover, "probe_lvm", lambda: OURS)
    monkeypatch.setattr(discover, "probe_block", probe_block)
    monkeypatch.setattr(discover, "resolve", lambda p: LINKS.get(p, p))
    return calls


def test_converged_paths_and_ids_skip_lsblk(converged, monkeypatch):
    record = {"/dev/vdb": rec("/dev/disk/by-id/virtio-a", "sa"),
              "/dev/vdc": rec("id=virtio-b", "sb")}  # fmt: skip
    monkeypatch.setattr(discover, "read_record", lambda: record)
    entries = ["/dev/disk/by-id/virtio-a", {"id": "virtio-b"}]
    found = discover.find_devices(mk(entries))
    assert converged["lsblk"] == 0
    assert found.new == {}
    assert found.resolved == {"/dev/disk/by-id/virtio-a": "/dev/vdb", "id=virtio-b": "/dev/vdc"}
    # the same choices (reasons included) as the full probe makes
    monkeypatch.setattr(discover, "read_record", lambda: {})
    full = discover.find_devices(mk(entries))
    assert converged["lsblk"] == 1
    assert [c.reason for c in found.choices] == [c.reason for c in full.choices]
    assert [c.serial for c in found.choices] == ["sa", "sb"]


@pytest.mark.parametrize(
    ("entries", "record"),
    [
        # an entry that is not (yet) a PV of our VG: the new disk gets every check
        (["/dev/vdb", "/dev/vdd"], {"/dev/vdb": rec("/dev/vdb")}),
        # the record does not say this entry chose the PV (or names another VG)
        (["/dev/vdb"], {}),
        (["/dev/vdb"], {"/dev/vdb": rec("/dev/vdc")}),
        (["/dev/vdb"], {"/dev/vdb": rec("/dev/vdb", vg="other")}),
        # serial (and wwn, size, first_empty) are lsblk's answers, not a record's
        ([{"serial": "sa"}], {"/dev/vdb": rec("serial=sa", "sa")}),
        ([{"id": "virtio-a", "min_size": "1G"}], {"/dev/vdb": rec("id=virtio-a,min_size=1G")}),
        # two entries, one disk: the full probe refuses it
        (["/dev/vdb", "/dev/disk/by-id/virtio-a"], {"/dev/vdb": rec("/dev/vdb")}),
    ],
)
def test_anything_not_known_takes_the_full_probe(converged, monkeypatch, entries, record):
    monkeypatch.setattr(discover, "read_record", lambda: record)
    monkeypatch.setattr(discover, "with_signatures",
                        lambda dev, label, **k: dataclasses.replace(dev, path=label))  # fmt: skip
    with contextlib.suppress(RefusedError, ConfigError):
        discover.find_devices(mk(entries, timeout=0))
    assert converged["lsblk"] == 1


# ------------------------------------------------------------ wipefs only where it counts

WIPEFS_EXT4 = '{"signatures": [{"device": "vdb", "offset": "0x438", "type": "ext4"}]}'


@pytest.mark.parametrize(
    ("udev", "always", "wipefs_runs"),
    [
        ({}, False, False),  # udev saw nothing: blank, no process
        ({"fstype": "ext4"}, False, True),  # the refusal names every signature
        ({"pttype": "gpt"}, False, True),
        ({}, True, True),  # wipe_signatures: the wipe needs the full list
    ],
)
def test_wipefs_runs_only_when_udev_saw_something_or_a_wipe_may_follow(
    monkeypatch, udev, always, wipefs_runs
):
    from direct_lvm import probe
    from direct_lvm.run import Result

    ran = []

    def fake_run(argv, **kw):
        ran.append(list(argv))
        return Result(tuple(argv), 0, WIPEFS_EXT4, "")

    monkeypatch.setattr(probe, "run", fake_run)
    dev = dataclasses.replace(disk("/dev/vdb"), **udev)
    got = probe.with_signatures(dev, "/dev/disk/by-id/virtio-a", always=always)
    assert got.path == "/dev/disk/by-id/virtio-a"
    assert ran == ([["wipefs", "--no-act", "--json", "/dev/vdb"]] if wipefs_runs else [])
    assert got.signatures == (("ext4",) if wipefs_runs else ())


def test_a_signature_udev_missed_is_refused_after_vgcreate_refused_it(monkeypatch):
    """udev showed the disk blank, vgcreate (its own blkid check, answered no) failed:
    wipefs names the signature, and it is the same refusal (exit 2) as before any step.
    A failure wipefs does not explain is left to the command's own error."""
    s = mk(["/dev/vdb"])
    blank = disk("/dev/vdb")
    found = {"sigs": ("ext4", "swap")}
    monkeypatch.setattr(discover, "with_signatures", lambda dev, label, always=False:
                        dataclasses.replace(dev, path=label, signatures=found["sigs"]))  # fmt: skip
    with pytest.raises(RefusedError) as exc:
        discover.missed_signatures(s, LvmState(), {"/dev/vdb": blank})
    assert exc.value.exit_code == 2
    assert "/dev/vdb holds data signatures (ext4, swap); refusing to touch it" in str(exc.value)
    assert "wipe_signatures: true" in (exc.value.hint or "")
    found["sigs"] = ()
    assert discover.missed_signatures(s, LvmState(), {"/dev/vdb": blank}) is None


def test_apply_turns_a_vgcreate_refusal_of_a_missed_signature_into_exit_2(monkeypatch):
    from direct_lvm import core
    from direct_lvm.errors import CommandError
    from direct_lvm.plan import Plan, Step
    from direct_lvm.steps import Kind

    s = mk(["/dev/vdb"])
    observed = dataclasses.make_dataclass("O", ["lvm", "devices"])(
        LvmState(), {"/dev/vdb": disk("/dev/vdb")}
    )
    vgcreate = Step(Kind.LVM, "volume group", ("vgcreate", "docker", "/dev/vdb"))
    monkeypatch.setattr(core, "make_plan", lambda spec, **k: (Plan(steps=(vgcreate,)), observed))

    def refuse(argv, **kw):
        raise CommandError(argv, 5, "Aborted wiping of ext4.")

    monkeypatch.setattr(core, "run", refuse)
    monkeypatch.setattr(core, "record_apply", lambda *a, **k: None)
    monkeypatch.setattr(core, "exclusive", contextlib.nullcontext)
    monkeypatch.setattr(discover, "with_signatures", lambda dev, label, always=False:
                        dataclasses.replace(dev, path=label, signatures=("ext4",)))  # fmt: skip
    with pytest.raises(RefusedError, match=r"holds data signatures \(ext4\)"):
        core.apply(s, dry_run=False)
    monkeypatch.setattr(discover, "with_signatures", lambda dev, label, always=False: dev)
    with pytest.raises(CommandError, match="Aborted wiping"):
        core.apply(s, dry_run=False)
