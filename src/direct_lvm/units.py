"""Sizes and LVM naming: pure helpers shared by spec, plan and status."""

from __future__ import annotations

import re

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
# lvm2's default for a new PV on a whole device: the first extent starts at 1 MiB.
PV_PE_START = 1 * MIB
TIB = 1024 * GIB

_SIZE_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KkMmGgTt])$")
_FACTORS = {"k": KIB, "m": MIB, "g": GIB, "t": TIB}


def parse_size(text: str) -> int:
    """'512K' -> 524288. Units are powers of 1024, as in LVM."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (expected e.g. 512K, 128M, 2G)")
    return int(float(m.group(1)) * _FACTORS[m.group(2).lower()])


def format_size(n: int) -> str:
    """Largest exact unit: 524288 -> '512K', 1536 MiB -> '1536M'; inexact -> bytes 'b'."""
    for unit, factor in (("T", TIB), ("G", GIB), ("M", MIB), ("K", KIB)):
        if n and n % factor == 0:
            return f"{n // factor}{unit}"
    return f"{n}b"


def human(n: float) -> str:
    """Rounded size for people: 2143289344 -> '2.00 GiB'."""
    for unit, factor in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {unit}"
    return f"{int(n)} B"


def dm_name(vg: str, lv: str) -> str:
    """Device-mapper name LVM gives vg/lv: '-' inside each name is doubled."""
    return f"{vg.replace('-', '--')}-{lv.replace('-', '--')}"


def round_up(n: int, step: int) -> int:
    return -(-n // step) * step


# thin-provisioning-tools' thin_metadata_size: one 4 KiB btree leaf per 126
# mappings (leaves assumed half full) plus one root block per thin device.
_TMS_ENTRIES_PER_NODE = 126
_TMS_BLOCK = 4096
MAX_THINS_ESTIMATE = 1000
# lvm2's limits for thin-pool metadata (DM_THIN_MIN/MAX_METADATA_SIZE).
MIN_METADATA = 2 * MIB
MAX_METADATA = 255 * ((1 << 14) - 64) * 4096
CHUNK_MIN = 64 * KIB
CHUNK_MAX = GIB


def auto_metadata_size(pool_bytes: int, chunk_bytes: int, extent_bytes: int) -> int:
    """Metadata size for a pool, as thin_metadata_size estimates it, clamped to lvm2's
    limits and rounded up to whole extents."""
    nr_blocks = -(-pool_bytes // chunk_bytes)
    leaves = -(-nr_blocks // _TMS_ENTRIES_PER_NODE)
    estimate = (leaves + MAX_THINS_ESTIMATE) * _TMS_BLOCK
    clamped = min(max(estimate, MIN_METADATA), MAX_METADATA)
    return min(round_up(clamped, extent_bytes), MAX_METADATA // extent_bytes * extent_bytes)


def chunk_size_problem(chunk: int) -> str | None:
    """Why a chunk size is invalid for dm-thin, or None."""
    if chunk < CHUNK_MIN or chunk > CHUNK_MAX:
        return "must be between 64K and 1G"
    if chunk % CHUNK_MIN:
        return "must be a multiple of 64K"
    return None


# ------------------------------------------------------------------ LVM names
# lvm2's rules, from lib/misc/lvm-string.c (lvm2 2.03): _validate_name() for every VG
# and LV name (NAME_LEN 128 counts the terminating NUL, so 127 characters), and
# apply_lvname_restrictions() for LV names (_lvname_has_reserved_prefix,
# _lvname_has_reserved_component_string, _lvname_has_reserved_string); the kernel's
# DM_NAME_LEN (128, with the NUL) bounds the device-mapper name dm_build_dm_name() makes.
LVM_NAME_MAX = 127
DM_NAME_MAX = 127
_LVM_NAME_CHAR = re.compile(r"[A-Za-z0-9+_.-]")  # isalnum() in the C locale, and + _ . -
LV_RESERVED_PREFIXES = ("pvmove", "snapshot")
LV_RESERVED_STRINGS = (
    # component LVs' suffixes
    "_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_wcorig", "_mimage", "_mlog",
    "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_imeta", "_iorig",
    # non-component LVs'
    "_pmspare", "_vorigin",
)  # fmt: skip
# A thin pool's hidden LVs are <pool>_tdata and <pool>_tmeta, and its active table is
# the layer <vg>-<pool>-tpool: each name is 6 characters longer than the pool's own.
POOL_SUFFIX_LEN = len("_tdata")
LVM_NAME_FIX = "use 1 to 127 letters, digits and + _ . - (not starting with '-', not '.' or '..')"


def lvm_name_problem(name: str, *, lv: bool) -> tuple[str, str] | None:
    """(the rule `name` breaks, the fix) for a VG name (lv=False) or an LV name, or None.
    Follows lvm2's lib/misc/lvm-string.c: _validate_name(), then for LVs
    apply_lvname_restrictions()."""
    if not name:
        return "is empty; LVM names need at least one character", LVM_NAME_FIX
    if name.startswith("-"):
        return (
            "starts with '-', which LVM refuses (the hyphen separates VG and LV in "
            "device-mapper names)",
            "drop the leading '-'",
        )
    if name in (".", ".."):
        return "is '.' or '..', which LVM refuses", "choose a real name, e.g. docker"
    bad = sorted({c for c in name if not _LVM_NAME_CHAR.fullmatch(c)})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        return (
            f"has character(s) LVM refuses: {shown}; only letters, digits and + _ . - are allowed",
            LVM_NAME_FIX,
        )
    if len(name) > LVM_NAME_MAX:
        return (
            f"is {len(name)} characters long; LVM allows at most {LVM_NAME_MAX}",
            "use a shorter name",
        )
    if lv:
        for prefix in LV_RESERVED_PREFIXES:
            if name.startswith(prefix):
                return (
                    f"starts with {prefix!r}, which LVM reserves for its own LVs",
                    f"choose a name that does not start with {prefix!r}",
                )
        rest = name[name.find("_") :] if "_" in name else ""
        for part in LV_RESERVED_STRINGS:
            if part in rest:
                return (
                    f"contains {part!r}, which LVM reserves for its internal LVs",
                    f"choose a name without {part!r}",
                )
    return None


def dm_name_problem(vg: str, lv: str, *, pool: bool) -> tuple[str, str] | None:
    """Why vg/lv's device-mapper names (and a pool's hidden LV names) are too long, or None."""
    extra = POOL_SUFFIX_LEN if pool else 0
    if pool and len(lv) + extra > LVM_NAME_MAX:
        return (
            f"is {len(lv)} characters long; LVM names the pool's hidden LVs "
            f"{lv}_tdata and _tmeta, which must fit in {LVM_NAME_MAX}",
            f"use a pool name of at most {LVM_NAME_MAX - extra} characters",
        )
    full = len(dm_name(vg, lv)) + extra
    if full > DM_NAME_MAX:
        return (
            f"makes the device-mapper name {dm_name(vg, lv)!r}"
            + (" (plus '-tpool' for the pool's layer)" if pool else "")
            + f" {full} characters long; the kernel allows {DM_NAME_MAX} ('-' inside "
            "names counts twice)",
            "use shorter vg and LV names",
        )
    return None
