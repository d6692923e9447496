"""Find the config's devices on this host: wait for late disks (udev settle, then poll
lsblk, a progress line every few seconds), select (devices.select), and read the chosen
new devices' signatures. The only I/O of device selection; the rules are in devices.py.

A converged system skips lsblk and the by-id walk (known_pvs): when every entry is a path
or an `id:` selector whose link resolves (os.path.realpath) to a PV of our VG that the
device record says this entry chose, LVM's report already answers everything."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

from ._record import Record, record
from .devices import BY_ID, Choice, Selection, Selector, id_name, select
from .errors import RefusedError
from .model import Spec
from .plan import DEVICE_RECORD, check_device, device_record
from .probe import (
    BlockDevice,
    LvmState,
    probe_block,
    probe_lvm,
    resolve,
    seen_devices,
    udev_settle,
    with_signatures,
)

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger("direct_lvm")

PROGRESS_EVERY = 5.0


@record
class Found(Record):
    lvm: LvmState
    choices: tuple[Choice, ...]
    new: dict[str, BlockDevice]  # label -> device not yet a PV of our VG (with signatures)
    resolved: dict[str, str]  # label -> kernel node


def _attempt(spec: Spec, lvm: LvmState) -> tuple[Selection, dict[str, BlockDevice]]:
    tree, links = probe_block()
    # lsblk names device-mapper nodes /dev/mapper/x; a link resolves to /dev/dm-N
    dm = {resolve(p): p for p in tree if p.startswith("/dev/mapper/")}
    resolved = {d: dm.get(resolve(d), resolve(d)) for d in spec.devices if d.startswith("/")}
    pv_vgs = {p.name: p.vg for p in lvm.pvs}
    return select(spec.entries, tree, links, resolved, pv_vgs, spec.vg), tree


def read_record(path: str = DEVICE_RECORD) -> dict[str, Any]:
    try:
        return device_record(Path(path).read_text())
    except OSError:
        return {}


def _link_of(entry: str | Selector) -> str | None:
    """The path whose realpath alone names an entry's disk: a path entry, or an `id:`
    selector with no other key. None for serial, wwn, size and first_empty: their
    answer is lsblk's (udev's identity, the current size), never a record's."""
    if isinstance(entry, str):
        return entry
    if entry.id and entry == Selector(id=entry.id):  # `text` does not compare
        return BY_ID + id_name(entry.id)
    return None


def known_pvs(spec: Spec, lvm: LvmState, record: Mapping[str, Any]) -> Found | None:
    """The converged case without lsblk: every entry resolves to a distinct PV of our VG
    that the record says this entry chose (so the record needs no rewrite and its
    identity fields stand for lsblk's). None when any entry does not: then the full
    probe runs, and a device LVM does not show as ours gets every check."""
    ours = {p.name for p in lvm.pvs_of(spec.vg)}
    if lvm.vg(spec.vg) is None or not ours:
        return None
    chosen: list[Choice] = []
    for entry in spec.entries:
        link = _link_of(entry)
        if link is None:
            return None
        real = resolve(link)
        label = entry if isinstance(entry, str) else entry.label
        rec = record.get(real)
        if (
            real not in ours
            or any(c.real == real for c in chosen)
            or not isinstance(rec, dict)
            or rec.get("entry") != label
            or rec.get("vg") != spec.vg
        ):
            return None
        if isinstance(entry, str):  # the same words as devices.select
            reason = "named by path" + (f" (a link to {real})" if real != entry else "")
        else:
            reason = f"already a PV of VG {spec.vg}"
        size = rec.get("size")
        serial, wwn = str(rec.get("serial") or ""), str(rec.get("wwn") or "")
        chosen.append(
            Choice(label, real, reason, True, serial, wwn, size if isinstance(size, int) else 0)
        )
    return Found(lvm, tuple(chosen), {}, {c.label: c.real for c in chosen})


def find_devices(spec: Spec, *, wait: bool = True, poll: float = 1.0) -> Found:
    """Select the config's devices, waiting up to spec.wait_timeout for missing ones."""
    lvm = probe_lvm()
    known = known_pvs(spec, lvm, read_record()) if lvm.vg(spec.vg) else None
    if known is not None:
        log.debug("every devices entry is a PV of %s: no lsblk needed", spec.vg)
        return known
    selection, tree = _attempt(spec, lvm)
    timeout = spec.wait_timeout if wait else 0.0
    if selection.missing and timeout > 0:
        start = last = time.monotonic()
        late = set(selection.missing)
        log.info("waiting up to %.0f s for %s", timeout, ", ".join(selection.missing))
        udev_settle(timeout)
        while True:
            selection, tree = _attempt(spec, lvm)
            now = time.monotonic()
            if not selection.missing or now - start >= timeout:
                break
            if now - last >= PROGRESS_EVERY:
                log.info(
                    "still waiting for %s (%.0f s of %.0f s)",
                    ", ".join(selection.missing),
                    now - start,
                    timeout,
                )
                last = now
            time.sleep(poll)
        if not selection.missing:
            found = [f"{c.label} -> {c.real}" for c in selection.chosen if c.label in late]
            log.info("found %s after %.1f s", ", ".join(found), time.monotonic() - start)
            lvm = probe_lvm()  # a late disk may carry one of our PVs
            selection, tree = _attempt(spec, lvm)
    if selection.missing:
        raise RefusedError(
            f"device(s) not found after waiting {timeout:.0f} s: "
            f"{', '.join(selection.missing)}; block devices seen: {seen_devices(tree)}",
            "check the entry against the disks seen (lsblk -o NAME,SIZE,SERIAL,WWN; "
            "ls -l /dev/disk/by-id/), check that the volume is attached, "
            "or raise wait_timeout",
        )
    always = spec.wipe_signatures
    new = {
        c.label: with_signatures(tree[c.real], c.label, always=always)
        for c in selection.chosen
        if not c.ours
    }
    resolved = {c.label: c.real for c in selection.chosen}
    return Found(lvm, selection.chosen, new, resolved)


# The commands that make new PVs: lvm's blkid check refuses a signature on them (asked
# with stdin closed, the answer is no) before anything is written.
PV_MAKERS = ("vgcreate", "vgextend")


def missed_signatures(spec: Spec, lvm: LvmState, devices: Mapping[str, BlockDevice]) -> None:
    """After vgcreate or vgextend failed: when a new device that udev showed blank holds a
    signature after all (wipefs, now), refuse it as check_device would have (RefusedError,
    exit 2: lvm wrote nothing); otherwise return and let the command's own error stand."""
    for label, dev in devices.items():
        if dev.signatures or dev.fstype or dev.pttype:
            continue  # wipefs ran already and check_device passed it
        check_device(spec, with_signatures(dev, label, always=True), lvm)
