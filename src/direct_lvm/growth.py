"""Growth of an existing VG and pool (part of the pure plan): a device that grew gets
pvresize, a device newly listed in `devices` gets vgextend, and the pool's data (and
metadata, when its sizing wants more) is extended to the configured share of the bigger
VG. Never shrinks: a device smaller than its PV is refused; a pool that autoextend made
larger than data_percent is left as it is."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from .errors import RefusedError
from .model import Spec
from .probe import LV, VG, BlockDevice, LvmState
from .steps import Kind, PlanBuilder
from .units import PV_PE_START, auto_metadata_size, format_size, human, round_up


def grow_vg(b: PlanBuilder, spec: Spec, vg: VG, lvm: LvmState, new: Sequence[BlockDevice]) -> VG:
    """pvresize each PV of the VG whose device grew by at least one extent, vgextend the
    VG with `new` (devices already checked and wiped by the caller). Returns the VG as it
    will be after these steps, for sizing the pool."""
    extent = vg.extent_size
    gained = 0
    for pv in lvm.pvs_of(spec.vg):
        if not pv.dev_size:
            continue  # device missing: lvm reports it; nothing to size against
        have = pv.size // extent
        if pv.dev_size < pv.pe_start + pv.size:
            raise RefusedError(
                f"{pv.name} is {human(pv.dev_size)} ({pv.dev_size} bytes), smaller than its "
                f"physical volume in {spec.vg!r} ({human(pv.pe_start + pv.size)}, "
                f"{pv.pe_start + pv.size} bytes): the device shrank and the extents past its "
                "end are gone; direct-lvm never shrinks a pool and changes nothing",
                f"grow the volume back to at least {pv.pe_start + pv.size} bytes (resize the "
                "cloud volume) and run apply again; shrinking a pool is not supported",
            )
        usable = (pv.dev_size - pv.pe_start) // extent
        if usable > have:
            b.run(
                f"{pv.name} grew: the device is {human(pv.dev_size)}, its PV "
                f"{human(pv.size)} ({usable - have} more extent(s))",
                "pvresize",
                pv.name,
                kind=Kind.LVM,
            )
            gained += usable - have
    if new:
        b.run(
            f"{', '.join(d.path for d in new)} listed in devices but not in "
            f"{spec.vg!r}: the volume group grows",
            "vgextend",
            spec.vg,
            *(d.real for d in new),
            kind=Kind.LVM,
        )
        gained += sum(max(0, d.size - PV_PE_START) // extent for d in new)
    if not gained:
        return vg
    return dataclasses.replace(
        vg,
        extent_count=vg.extent_count + gained,
        free_count=vg.free_count + gained,
        size=vg.size + gained * extent,
        free=vg.free + gained * extent,
    )


def _spare(lvm: LvmState, vg: str) -> int:
    """Size of lvm2's spare metadata LV (lvol0_pmspare), 0 when there is none."""
    return sum(
        lv.size for lv in lvm.lvs if lv.vg == vg and lv.name.strip("[]").endswith("_pmspare")
    )


def grow_pool(b: PlanBuilder, spec: Spec, vg: VG, pool: LV, lvm: LvmState) -> None:
    """Extend the pool to data_percent of `vg` (as grown) and its metadata to what its
    sizing wants, within the VG's free extents (the spare metadata LV grows with the
    metadata). Sizes are whole extents."""
    ref = f"{spec.vg}/{spec.pool}"
    ext = vg.extent_size
    target = vg.extent_count * spec.data_percent // 100 * ext
    data = max(pool.size, target)
    if spec.metadata_size is not None:
        meta_want = round_up(spec.metadata_size, ext)
        if meta_want < pool.metadata_size:
            # not refused: LVM's own autoextend grows metadata past the config's size
            b.fact(
                f"{ref} metadata is {format_size(pool.metadata_size)}, above metadata_size "
                f"{format_size(spec.metadata_size)}; LVM cannot shrink pool metadata, left "
                "as it is"
            )
    else:
        meta_want = auto_metadata_size(data, pool.chunk_size or spec.chunk_size, ext)
    meta_add = max(0, meta_want - pool.metadata_size)
    spare_add = max(0, pool.metadata_size + meta_add - _spare(lvm, spec.vg)) if meta_add else 0
    free = vg.free_count * ext
    if meta_add + spare_add > free:
        b.note(
            f"{ref} metadata should grow to {format_size(meta_want)} but the volume group "
            f"has only {human(free)} free (the spare metadata copy grows with it); add a "
            "device to devices or grow one"
        )
        meta_add = spare_add = 0
    free -= meta_add + spare_add
    data_add = data - pool.size
    if data_add > free:
        b.note(
            f"{ref} should grow to {human(data)} (data_percent {spec.data_percent} of the "
            f"{human(vg.size)} VG) but only {human(free)} is free; it grows by that much"
        )
        data_add = free // ext * ext
    if meta_add:
        b.run(
            f"{ref} metadata is {format_size(pool.metadata_size)}; "
            + (f"metadata_size is {format_size(meta_want)}" if spec.metadata_size is not None
               else f"a {human(pool.size + data_add)} pool wants {format_size(meta_want)}")
            + " (the spare copy grows too)",
            "lvextend", "--poolmetadatasize", f"{pool.metadata_size + meta_add}b", ref,
            kind=Kind.LVM,
        )  # fmt: skip
    if data_add > 0:
        b.run(
            f"{ref} is {human(pool.size)}; data_percent {spec.data_percent} of the "
            f"{human(vg.size)} volume group is {human(target)}",
            "lvextend", "--extents", str((pool.size + data_add) // ext), ref, kind=Kind.LVM,
        )  # fmt: skip
    elif pool.size > target:
        b.fact(
            f"{ref} is {human(pool.size)}, above data_percent {spec.data_percent} of the "
            f"{human(vg.size)} volume group ({human(target)}): autoextend grew it; left as it is"
        )
