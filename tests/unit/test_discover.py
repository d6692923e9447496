"""Waiting for late disks (discover.find_devices) with a fake clock: udev settle once,
poll lsblk, a progress line every 5 s, and a timeout error listing the disks seen."""

import dataclasses
import logging

import pytest

from direct_lvm import discover, spec
from direct_lvm.errors import RefusedError
from direct_lvm.probe import BlockDevice, LvmState


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
                        lambda dev, label: dataclasses.replace(dev, path=label))  # fmt: skip
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
