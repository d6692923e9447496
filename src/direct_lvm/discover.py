"""Find the config's devices on this host: wait for late disks (udev settle, then poll
lsblk, a progress line every few seconds), select (devices.select), and read the chosen
new devices' signatures. The only I/O of device selection; the rules are in devices.py."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .devices import Choice, Selection, select
from .errors import RefusedError
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
from .spec import Spec

log = logging.getLogger("direct_lvm")

PROGRESS_EVERY = 5.0


@dataclass(frozen=True)
class Found:
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


def find_devices(spec: Spec, *, wait: bool = True, poll: float = 1.0) -> Found:
    """Select the config's devices, waiting up to spec.wait_timeout for missing ones."""
    lvm = probe_lvm()
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
                log.info("still waiting for %s (%.0f s of %.0f s)",
                         ", ".join(selection.missing), now - start, timeout)  # fmt: skip
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
    new = {c.label: with_signatures(tree[c.real], c.label) for c in selection.chosen if not c.ours}
    resolved = {c.label: c.real for c in selection.chosen}
    return Found(lvm, selection.chosen, new, resolved)
