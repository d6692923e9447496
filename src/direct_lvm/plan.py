"""plan(spec, observed) -> ordered steps. Pure: no I/O, no commands. An empty plan means
the system already matches the config. Every step carries its kind, its argv (or file)
and why. The devices' checks, the VG and the thin pool are planned here (growth in
growth.py); a plain LV and everything after LVM come from the runtime's plugin."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace

from . import OWNER_TAG, runtimes
from ._record import Record, record
from .errors import ConfigError, RefusedError
from .growth import grow_pool, grow_vg
from .model import Spec
from .observed import Observed as Observed
from .pool import profile_path as pool_profile_path
from .probe import LV, VG, BlockDevice, LvmState
from .runtimes._systemd import RestartMode
from .runtimes.base import PlanInput
from .steps import Action as Action
from .steps import Kind, PlanBuilder
from .steps import Plan as Plan
from .steps import Step as Step
from .units import (
    MAX_METADATA,
    MIB,
    PV_PE_START,
    auto_metadata_size,
    format_size,
    human,
    round_up,
)

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any

# lvm2 defaults for a new VG on a whole device: PV_PE_START before the first extent,
# 4 MiB extents.
DEFAULT_EXTENT = 4 * MIB
MIN_POOL_DATA = 64 * MIB


# ------------------------------------------------------------------ devices


def check_device(spec: Spec, dev: BlockDevice, lvm: LvmState) -> bool:
    """Refuse a device that is not safe to take. Returns True when its signatures must be
    wiped first (only allowed with wipe_signatures)."""
    name = dev.path if dev.path == dev.real else f"{dev.path} ({dev.real})"
    if dev.is_root_disk:
        raise RefusedError(
            f"{name} is the disk that holds the root filesystem; refusing to touch it",
            "list a spare data disk in devices (see lsblk)",
        )
    if dev.mountpoints:
        raise RefusedError(
            f"{name} is mounted at {', '.join(dev.mountpoints)}; refusing to touch it",
            "unmount it (and remove it from /etc/fstab) first, or list another device",
        )
    if dev.read_only:
        raise RefusedError(f"{name} is read-only", "attach the volume read-write")
    if dev.type not in (
        "disk",
        "part",
        "mpath",
        "crypt",
        "raid0",
        "raid1",
        "raid5",
        "raid6",
        "raid10",
        "md",
        "loop",
    ):
        raise RefusedError(
            f"{name} is a {dev.type or 'non-block'} device, not a disk or partition",
            "name a whole disk or a partition",
        )
    pv = lvm.pv(dev.real)
    if pv is not None and pv.vg and pv.vg != spec.vg:
        raise RefusedError(
            f"{name} is a physical volume of the volume group {pv.vg!r}; refusing to touch it",
            f"list another device, or remove it from {pv.vg!r} yourself (vgreduce/pvremove) "
            "if its data is not needed",
        )
    if dev.holders:
        kind = "partitions" if dev.pttype else "devices stacked on it"
        raise RefusedError(
            f"{name} has {kind}: {', '.join(dev.holders)}; refusing to touch it",
            "list an unused device; to reuse this one, remove what is on it first"
            + (" and set wipe_signatures: true to erase the partition table" if dev.pttype else ""),
        )
    sigs = list(dev.signatures)
    if dev.pttype and not any(s in ("gpt", "dos", "PMBR") for s in sigs):
        sigs.append(f"{dev.pttype} partition table")
    if sigs:
        if not spec.wipe_signatures:
            raise RefusedError(
                f"{name} holds data signatures ({', '.join(sigs)}); refusing to touch it",
                "list a blank device, or set wipe_signatures: true if its contents may be "
                f"destroyed (check with: wipefs --no-act {dev.real})",
            )
        return True
    return False


DEVICE_RECORD = "/var/lib/direct-lvm/devices.json"


def device_record(text: str | None) -> dict[str, Any]:
    """The record of which config entry chose each PV, and why (status shows it)."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _record_choices(b: PlanBuilder, spec: Spec, observed: Observed) -> None:
    """Note which entry chose each device and why (for status): written when a chosen
    device is not in the record yet, so a converged system plans nothing."""
    record = device_record(observed.device_record)
    new = dict(record)
    for c in observed.choices:
        if new.get(c.real, {}).get("entry") == c.label and new[c.real].get("vg") == spec.vg:
            continue
        new[c.real] = {
            "vg": spec.vg,
            "entry": c.label,
            "reason": c.reason,
            "serial": c.serial,
            "wwn": c.wwn,
            "size": c.size,
        }
    if new != record:
        b.write(
            "record which device each devices entry chose, and why",
            DEVICE_RECORD,
            json.dumps(new, indent=2, sort_keys=True) + "\n",
        )


def estimate_vg(devices: Mapping[str, BlockDevice]) -> tuple[int, int]:
    """(extent size, extent count) lvm2 will give a new VG on these devices by default."""
    count = sum(max(0, d.size - PV_PE_START) // DEFAULT_EXTENT for d in devices.values())
    return DEFAULT_EXTENT, count


@record
class Sizing(Record):
    extent: int
    vg_bytes: int
    data: int
    metadata: int

    @property
    def free_after(self) -> int:
        # lvm2 keeps a spare metadata LV (pmspare) the size of the metadata for repairs.
        return self.vg_bytes - self.data - 2 * self.metadata


def size_pool(spec: Spec, extent: int, extents: int) -> Sizing:
    data = extents * spec.data_percent // 100 * extent
    meta = spec.metadata_size or auto_metadata_size(data, spec.chunk_size, extent)
    return Sizing(extent, extents * extent, data, round_up(meta, extent))


def extension_room(free: int, size: int, extent: int, percent: int) -> int:
    """How many autoextend steps of `percent` (of the pool's size) fit in `free` bytes."""
    n = 0
    while n < 100:
        step = round_up(-(-size * percent // 100), extent)
        if step > free:
            break
        free, size, n = free - step, size + step, n + 1
    return n


def _max_percent_with_room(spec: Spec, s: Sizing) -> int:
    meta_pct = 2 * s.metadata * 100 / s.vg_bytes if s.vg_bytes else 100
    return max(1, int((100 - meta_pct) / (1 + spec.autoextend.percent / 100)))


def _check_sizing(spec: Spec, s: Sizing, where: str) -> list[str]:
    if s.data < max(MIN_POOL_DATA, 2 * spec.chunk_size) or s.free_after < 0:
        if s.free_after < 0:
            why = (
                f"data_percent {spec.data_percent} ({human(s.data)}) plus metadata "
                f"{human(s.metadata)} and its spare copy exceed the {human(s.vg_bytes)} VG"
            )
            fix = "lower data_percent or metadata_size"
        else:
            why = f"the pool data would be {human(s.data)}, below the minimum of 64 MiB"
            fix = "use a larger device or a higher data_percent"
        raise RefusedError(f"{where}: {why}", fix)
    notes = []
    if (
        spec.autoextend.enabled
        and extension_room(s.free_after, s.data, s.extent, spec.autoextend.percent) == 0
    ):
        notes.append(
            f"autoextend can never fire: after the pool ({human(s.data)} data, "
            f"{human(s.metadata)} metadata plus spare) only {human(s.free_after)} of the "
            f"{human(s.vg_bytes)} VG is free, and one {spec.autoextend.percent}% extension "
            f"needs {human(-(-s.data * spec.autoextend.percent // 100))}. Set data_percent to "
            f"{_max_percent_with_room(spec, s)} or less to leave room for one, or set "
            "autoextend.threshold: 100 to turn autoextend off knowingly."
        )
    return notes


# ------------------------------------------------------------------ the plan


def plan(
    spec: Spec,
    observed: Observed,
    desired_files: Mapping[str, str],
    *,
    restart: RestartMode = RestartMode.NOW,
) -> Plan:
    """The steps that take the observed system to the spec. `desired_files` maps each
    managed path to its rendered content; the LVM profile is written before the pool is
    created (lvcreate needs it), the runtime's files after."""
    b = PlanBuilder()
    lvm = observed.lvm
    vg = lvm.vg(spec.vg)
    profile_path = pool_profile_path(spec)
    rt = runtimes.get(spec.runtime)

    if vg is not None and not vg.owned:
        raise RefusedError(
            f"volume group {spec.vg!r} exists and was not created by direct-lvm "
            f"(it has no {OWNER_TAG!r} tag); refusing to touch it",
            f"choose another vg name; or, to let direct-lvm manage a VG you made by hand: "
            f"vgchange --addtag {OWNER_TAG} {spec.vg}",
        )

    wipe: list[BlockDevice] = []
    why = {c.label: c for c in observed.choices if not c.label.startswith("/")}
    for path in spec.devices:
        dev = observed.devices.get(path)
        if dev is None:  # already a PV of our VG
            if path in why:
                b.fact(f"device {path} -> {why[path].real}: {why[path].reason}")
            continue
        if check_device(spec, dev, lvm):
            wipe.append(dev)
        b.fact(
            f"device {path}"
            + (f" -> {dev.real}" if dev.real != path else "")
            + f": {human(dev.size)} {dev.type}"
            + (f", serial {dev.serial}" if dev.serial else "")
            + ", "
            + ("signatures will be wiped (wipe_signatures: true)" if dev in wipe else "blank")
            + (f"; chosen as {why[path].reason}" if path in why else "")
        )
    if vg is not None:
        listed = {observed.resolved.get(d, d) for d in spec.devices}
        extra = [p.name for p in lvm.pvs_of(spec.vg) if p.name not in listed]
        if extra:  # not a fault: reported, never acted on
            b.fact(
                f"volume group {spec.vg!r} also has {', '.join(extra)}, which devices does "
                "not list; left as it is"
            )

    for dev in wipe:
        b.run(f"{dev.path} holds {', '.join(dev.signatures) or dev.pttype}; "
              "wipe_signatures is true", "wipefs", "--all", dev.real,
              kind=Kind.WIPE)  # fmt: skip

    if (
        profile_path in desired_files
        and observed.files.get(profile_path) != desired_files[profile_path]
    ):
        b.write(
            "autoextend policy (LVM metadata profile) "
            + ("is missing" if observed.files.get(profile_path) is None else "differs"),
            profile_path,
            desired_files[profile_path],
        )

    pool = lvm.lv(spec.vg, spec.pool)
    thick = not rt.thin  # a plain LV at the runtime's root, no thin pool
    if pool is not None and vg is not None and not thick and half_made_pool(pool):
        vg = _remove_half_made_pool(b, spec, vg, pool)
        pool = None
    grow_fs = False  # a plain LV: its XFS must grow to the LV's size
    if vg is None:
        extent, extents = estimate_vg(observed.devices)
        sizing = size_pool(spec, extent, extents)
        if not thick:
            for note in _check_sizing(spec, sizing, "devices " + ", ".join(spec.devices)):
                b.note(note)
        b.run(
            f"volume group {spec.vg!r} does not exist",
            "vgcreate", "--addtag", OWNER_TAG, spec.vg,
            *(observed.devices[d].real for d in spec.devices), kind=Kind.LVM,
        )  # fmt: skip
        if thick:
            grow_fs = rt.plan_lv(b, spec, observed, None, sizing.vg_bytes)
        else:
            _create_pool(b, spec, sizing)
    else:
        vg = grow_vg(b, spec, vg, lvm, list(observed.devices.values()))
        if thick:
            grow_fs = rt.plan_lv(b, spec, observed, vg, vg.extent_count * vg.extent_size)
        elif pool is None:
            sizing = size_pool(spec, vg.extent_size, vg.extent_count)
            sizing = _fit_existing(spec, vg, sizing)
            for note in _check_sizing(spec, sizing, f"volume group {spec.vg}"):
                b.note(note)
            _create_pool(b, spec, sizing)
        else:
            _converge_pool(b, spec, vg, pool)
            grow_pool(b, spec, vg, pool, lvm)

    before = len(b.steps)
    rt.plan(b, PlanInput(spec, observed, desired_files, restart, grow_fs))
    runtime_steps = len(b.steps) - before
    _record_choices(b, spec, observed)
    return b.build(runtime_steps)


def half_made_pool(lv: LV) -> bool:
    """What `lvcreate --type thin-pool` leaves when it is stopped (power loss, kill) after
    its first metadata commit: the pool's name on a plain linear LV of the metadata's size,
    carrying the tag lvcreate was given (lvm2's create_pool: "If killed here, only the
    VISIBLE striped pool LV is left and user could easily remove it"). Ours by the tag,
    never more than metadata can be, closed: it holds nothing but zeroed metadata."""
    return (
        lv.owned
        and lv.attr[:1] == "-"
        and lv.segtype in ("linear", "striped", "")
        and lv.size <= MAX_METADATA
        and lv.attr[5:6] != "o"
    )


def _remove_half_made_pool(b: PlanBuilder, spec: Spec, vg: VG, lv: LV) -> VG:
    b.run(
        f"{spec.vg}/{spec.pool} is a {human(lv.size)} plain LV tagged {OWNER_TAG}: what an "
        "lvcreate of the pool leaves when it is stopped midway; removed and created again",
        "lvremove", "--yes", f"{spec.vg}/{spec.pool}", kind=Kind.LVM,
    )  # fmt: skip
    freed = lv.size // vg.extent_size if vg.extent_size else 0
    return replace(vg, free=vg.free + lv.size, free_count=vg.free_count + freed)


def _fit_existing(spec: Spec, vg: VG, s: Sizing) -> Sizing:
    """An existing VG without the pool (a run stopped after vgcreate): size against what
    is free, not what the VG had when new."""
    if s.data + 2 * s.metadata > vg.free:
        raise RefusedError(
            f"volume group {spec.vg!r} has {human(vg.free)} free, not enough for a "
            f"{human(s.data)} pool with {human(s.metadata)} metadata",
            f"free space in {spec.vg!r} (lvs {spec.vg}) or lower data_percent",
        )
    return s


def _create_pool(b: PlanBuilder, spec: Spec, s: Sizing) -> None:
    b.fact(
        f"pool {spec.vg}/{spec.pool}: {spec.data_percent}%VG data (~{human(s.data)}), "
        f"{format_size(s.metadata)} metadata"
        + (" (auto)" if spec.metadata_size is None else "")
        + f", chunk {format_size(spec.chunk_size)}, zeroing {'on' if spec.zero else 'off'}"
        + ("" if spec.zero_metadata else ", metadata zeroed in its first 4 KiB only")
    )
    # zero_metadata false: lvm's own setting for this command only (lvm >= 2.03.10 zeroes
    # the whole metadata LV and its spare by default: 2 x 3.3 GiB written for 64 TiB)
    no_full_zero = () if spec.zero_metadata else ("--config", "allocation/zero_metadata=0")
    b.run(
        f"thin pool {spec.vg}/{spec.pool} does not exist",
        "lvcreate", "--yes", "--type", "thin-pool", "--name", spec.pool,
        "--extents", f"{spec.data_percent}%VG",
        "--poolmetadatasize", f"{s.metadata}b",
        "--chunksize", f"{spec.chunk_size // 1024}k",
        "--zero", "y" if spec.zero else "n",
        "--metadataprofile", spec.profile_name,
        "--addtag", OWNER_TAG,
        *no_full_zero,
        spec.vg, kind=Kind.LVM,
    )  # fmt: skip
    if spec.error_when_full:  # lvcreate --type thin-pool does not take --errorwhenfull
        b.run(
            f"error_when_full: {spec.vg}/{spec.pool} must fail writes when full, not queue",
            "lvchange", "--errorwhenfull", "y", f"{spec.vg}/{spec.pool}", kind=Kind.LVM,
        )  # fmt: skip


def claim_lv(b: PlanBuilder, lv: LV, ref: str) -> None:
    """An existing LV of ours (the pool, or a runtime's plain LV): tagged and active."""
    if not lv.owned:
        b.run(f"{ref} lacks the {OWNER_TAG} tag", "lvchange", "--addtag", OWNER_TAG, ref,
              kind=Kind.LVM)  # fmt: skip
    if not lv.active:
        b.run(f"{ref} is not active", "lvchange", "--activate", "y", ref, kind=Kind.LVM)


def _converge_pool(b: PlanBuilder, spec: Spec, vg: VG, pool: LV) -> None:
    ref = f"{spec.vg}/{spec.pool}"
    if not pool.is_thin_pool:
        raise RefusedError(
            f"{ref} exists but is not a thin pool (lv_attr {pool.attr})",
            "choose another pool name, or remove that LV if its data is not needed",
        )
    if pool.chunk_size and pool.chunk_size != spec.chunk_size:
        raise ConfigError(
            f"{ref} has chunk size {format_size(pool.chunk_size)}, the config says "
            f"{format_size(spec.chunk_size)}; a pool's chunk size cannot change in place",
            f"set chunk_size: {format_size(pool.chunk_size)}, or recreate the pool",
        )
    claim_lv(b, pool, ref)
    if pool.zero != spec.zero:
        b.run(f"{ref} has zeroing {'on' if pool.zero else 'off'}", "lvchange", "--zero",
              "y" if spec.zero else "n", ref, kind=Kind.LVM)  # fmt: skip
    if pool.profile != spec.profile_name:
        b.run(
            f"{ref} has metadata profile {pool.profile or '(none)'!r}",
            "lvchange", "--metadataprofile", spec.profile_name, ref, kind=Kind.LVM,
        )  # fmt: skip
    if (pool.when_full == "error") != spec.error_when_full:
        b.run(
            f"{ref} {'fails' if pool.when_full == 'error' else 'queues'} writes when full "
            f"(error_when_full is {str(spec.error_when_full).lower()})",
            "lvchange", "--errorwhenfull", "y" if spec.error_when_full else "n", ref,
            kind=Kind.LVM,
        )  # fmt: skip
    if pool.monitor != "monitored" or not pool.active:
        b.run(f"{ref} is {pool.monitor or 'not monitored'}", "lvchange", "--monitor", "y", ref,
              kind=Kind.LVM)  # fmt: skip
