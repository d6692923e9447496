"""Sizes and LVM naming: pure helpers shared by spec, plan and status."""

from __future__ import annotations

import re

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
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
