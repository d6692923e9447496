"""Read the system's state: LVM through one JSON `lvm fullreport`, block devices through
`lsblk --json` and `wipefs --no-act --json`, mounts through `findmnt --json`. Parsing is
pure and unit-tested on real output."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import field

from . import OWNER_TAG
from ._record import Record, record
from .errors import CommandError
from .run import run
from .units import PV_PE_START, human

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger("direct_lvm")

PV_FIELDS = "pv_name,pv_uuid,vg_name,dev_size,pv_size,pe_start"
VG_FIELDS = "vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,vg_extent_count,vg_free_count,vg_tags"
LV_FIELDS = (
    "lv_name,vg_name,lv_uuid,lv_attr,lv_size,lv_metadata_size,data_percent,"
    "metadata_percent,lv_profile,lv_tags,lv_when_full"
)
SEG_FIELDS = "lv_uuid,segtype,chunk_size,zero,seg_monitor"


def fullreport_argv() -> list[str]:
    """One lvm call that reports PVs, VGs, LVs and segments as JSON, sizes in bytes."""
    return [
        "lvm", "fullreport", "--reportformat", "json", "--units", "b", "--nosuffix",
        "--binary", "-a",
        "--configreport", "pv", "-o", PV_FIELDS,
        "--configreport", "vg", "-o", VG_FIELDS,
        "--configreport", "lv", "-o", LV_FIELDS,
        "--configreport", "seg", "-o", SEG_FIELDS,
        "--configreport", "pvseg", "-o", "pvseg_start",
    ]  # fmt: skip


@record
class PV(Record):
    name: str
    uuid: str
    vg: str
    dev_size: int
    size: int  # pv_size: the usable extents (pe_count * extent size) once in a VG
    pe_start: int = PV_PE_START  # where the first extent starts (lvm2's default)


@record
class VG(Record):
    name: str
    uuid: str
    size: int
    free: int
    extent_size: int
    extent_count: int
    free_count: int
    tags: frozenset[str]

    @property
    def owned(self) -> bool:
        return OWNER_TAG in self.tags


@record
class LV(Record):
    vg: str
    name: str
    uuid: str
    attr: str
    size: int
    metadata_size: int
    data_percent: float | None
    metadata_percent: float | None
    profile: str
    tags: frozenset[str]
    when_full: str
    segtype: str = ""
    chunk_size: int = 0
    zero: bool = False
    monitor: str = ""

    @property
    def is_thin_pool(self) -> bool:
        return self.attr.startswith("t")

    @property
    def active(self) -> bool:
        return len(self.attr) > 4 and self.attr[4] == "a"

    @property
    def owned(self) -> bool:
        return OWNER_TAG in self.tags


@record
class LvmState(Record):
    pvs: tuple[PV, ...] = ()
    vgs: tuple[VG, ...] = ()
    lvs: tuple[LV, ...] = ()

    def vg(self, name: str) -> VG | None:
        return next((v for v in self.vgs if v.name == name), None)

    def lv(self, vg: str, name: str) -> LV | None:
        return next((v for v in self.lvs if v.vg == vg and v.name == name), None)

    def pv(self, device: str) -> PV | None:
        return next((p for p in self.pvs if p.name == device), None)

    def pvs_of(self, vg: str) -> tuple[PV, ...]:
        return tuple(p for p in self.pvs if p.vg == vg)


def _int(v: str) -> int:
    return int(v) if v not in ("", None) else 0


def _pct(v: str) -> float | None:
    return float(v) if v not in ("", None) else None


def _tags(v: str) -> frozenset[str]:
    return frozenset(t for t in v.split(",") if t)


def parse_fullreport(text: str) -> LvmState:
    """Parse `lvm fullreport --reportformat json --units b --nosuffix --binary`."""
    doc = json.loads(text) if text.strip() else {"report": []}
    pvs: list[PV] = []
    vgs: list[VG] = []
    lvs: list[LV] = []
    for rep in doc.get("report", []):
        segs = {s["lv_uuid"]: s for s in rep.get("seg", []) if s.get("lv_uuid")}
        for p in rep.get("pv", []):
            pvs.append(
                PV(
                    p["pv_name"],
                    p["pv_uuid"],
                    p.get("vg_name", ""),
                    _int(p["dev_size"]),
                    _int(p["pv_size"]),
                    _int(p.get("pe_start", "")) or PV_PE_START,
                )
            )
        for v in rep.get("vg", []):
            vgs.append(
                VG(
                    name=v["vg_name"],
                    uuid=v["vg_uuid"],
                    size=_int(v["vg_size"]),
                    free=_int(v["vg_free"]),
                    extent_size=_int(v["vg_extent_size"]),
                    extent_count=_int(v["vg_extent_count"]),
                    free_count=_int(v["vg_free_count"]),
                    tags=_tags(v["vg_tags"]),
                )
            )
        for lv in rep.get("lv", []):
            seg: dict[str, Any] = segs.get(lv["lv_uuid"], {})
            lvs.append(
                LV(
                    vg=lv["vg_name"],
                    name=lv["lv_name"],
                    uuid=lv["lv_uuid"],
                    attr=lv["lv_attr"],
                    size=_int(lv["lv_size"]),
                    metadata_size=_int(lv["lv_metadata_size"]),
                    data_percent=_pct(lv["data_percent"]),
                    metadata_percent=_pct(lv["metadata_percent"]),
                    profile=lv["lv_profile"],
                    tags=_tags(lv["lv_tags"]),
                    when_full=lv.get("lv_when_full", ""),
                    segtype=seg.get("segtype", ""),
                    chunk_size=_int(seg.get("chunk_size", "")),
                    zero=seg.get("zero", "0") == "1",
                    monitor=seg.get("seg_monitor", ""),
                )
            )
    # An orphan PV is reported once per report; keep one of each.
    uniq = {p.name: p for p in pvs}
    return LvmState(tuple(uniq.values()), tuple(vgs), tuple(lvs))


def probe_lvm() -> LvmState:
    return parse_fullreport(run(fullreport_argv()).stdout)


# ---------------------------------------------------------------- block devices

LSBLK_COLUMNS = "NAME,PATH,TYPE,SIZE,FSTYPE,PTTYPE,MOUNTPOINTS,SERIAL,WWN,RO"
# util-linux < 2.37 (bullseye has 2.36.1) knows no MOUNTPOINTS column, only MOUNTPOINT
# (one mount point per device, enough to refuse a mounted one): lsblk exits 1 with
# "unknown column" and the probe asks again with these.
LSBLK_COLUMNS_BEFORE_2_37 = LSBLK_COLUMNS.replace("MOUNTPOINTS", "MOUNTPOINT")


@record
class BlockDevice(Record):
    path: str  # as the config names it
    real: str  # the kernel device node it resolves to
    type: str  # disk, part, lvm, loop, ...
    size: int
    fstype: str
    pttype: str
    mountpoints: tuple[str, ...]  # of this device and everything stacked on it
    holders: tuple[str, ...]  # partitions or dm devices on top of it
    is_root_disk: bool
    read_only: bool
    serial: str = ""
    wwn: str = ""
    signatures: tuple[str, ...] = field(default=())


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children", []) or []:
        yield from _walk(child)


def _mounts(node: dict[str, Any]) -> list[str]:
    return [m for n in _walk(node) for m in _node_mounts(n) if m]


def _node_mounts(node: dict[str, Any]) -> list[str]:
    if "mountpoints" in node:
        return list(node["mountpoints"] or [])
    return [node["mountpoint"]] if node.get("mountpoint") else []  # util-linux < 2.37


def parse_lsblk(text: str) -> dict[str, BlockDevice]:
    """Index `lsblk --json --bytes` by kernel path. A device's mountpoints include
    those of its partitions and stacked devices; the root disk is the top-level device
    below '/'."""
    doc = json.loads(text)
    out: dict[str, BlockDevice] = {}
    for top in doc.get("blockdevices", []):
        root_disk = "/" in _mounts(top)
        for node in _walk(top):
            path = node["path"]
            if path in out:  # a dm device below several PVs: first sighting is enough
                continue
            out[path] = BlockDevice(
                path=path,
                real=path,
                type=node.get("type") or "",
                size=int(node.get("size") or 0),
                fstype=node.get("fstype") or "",
                pttype=node.get("pttype") or "",
                mountpoints=tuple(_mounts(node)),
                holders=tuple(c["path"] for c in node.get("children", []) or []),
                is_root_disk=root_disk,
                read_only=bool(node.get("ro")) and node.get("ro") not in ("0", 0),
                serial=node.get("serial") or "",
                wwn=node.get("wwn") or "",
            )
    return out


def parse_wipefs(text: str) -> tuple[str, ...]:
    """Signature types from `wipefs --no-act --json` (empty output: none)."""
    if not text.strip():
        return ()
    doc = json.loads(text)
    return tuple(s.get("type") or "unknown" for s in doc.get("signatures", []))


def resolve(path: str) -> str:
    return os.path.realpath(path)


BY_ID_DIR = "/dev/disk/by-id"


def by_id_links(directory: str = BY_ID_DIR) -> dict[str, tuple[str, ...]]:
    """Kernel path -> the /dev/disk/by-id links that point at it, sorted."""
    out: dict[str, list[str]] = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return {}
    for name in names:
        link = f"{directory}/{name}"
        out.setdefault(resolve(link), []).append(link)
    return {k: tuple(v) for k, v in out.items()}


Block = tuple[dict[str, BlockDevice], dict[str, tuple[str, ...]]]  # lsblk tree, by-id links


def probe_block() -> Block:
    """Every block device lsblk lists (by kernel path) and the by-id links."""
    argv = ["lsblk", "--json", "--bytes", "--paths", "-o"]
    result = run([*argv, LSBLK_COLUMNS], check=False)
    if result.returncode != 0 and "unknown column" in result.stderr:
        result = run([*argv, LSBLK_COLUMNS_BEFORE_2_37], check=False)
    if result.returncode != 0:
        raise CommandError(result.argv, result.returncode, result.stderr or result.stdout)
    return parse_lsblk(result.stdout), by_id_links()


def seen_devices(tree: dict[str, BlockDevice]) -> str:
    """The disks and partitions seen, for an error message: name, size, serial."""
    parts = [
        f"{d.real} ({human(d.size)} {d.type}"
        + (f", serial {d.serial}" if d.serial else "")
        + (f", {d.fstype}" if d.fstype else "")
        + (f", mounted at {', '.join(d.mountpoints)}" if d.mountpoints and d.type != "lvm" else "")
        + ")"
        for d in tree.values()
        if d.type in ("disk", "part", "loop", "mpath", "md")
    ]
    return "; ".join(parts) or "none"


def udev_settle(timeout: float, cap: float = 30) -> bool:
    """Wait, at most min(timeout, cap) s, until udev has processed the events queued so
    far; False when it was still busy then."""
    seconds = max(1, int(min(timeout, cap)))
    return run(["udevadm", "settle", f"--timeout={seconds}"], check=False).returncode == 0


def with_signatures(dev: BlockDevice, label: str, *, always: bool = False) -> BlockDevice:
    """dev as the config entry `label` names it, with wipefs's signatures when lsblk
    (udev's blkid probe) shows a filesystem or partition table on it, or `always`
    (wipe_signatures: the wipe needs every signature). A device udev saw nothing on is
    taken as blank without wipefs (0.2-0.7 s under TCG with the Python around it): a
    signature udev missed (two at once, or written after udev's probe) still stops
    vgcreate and vgextend, whose own blkid check asks before wiping and, on a closed
    stdin, answers no; apply then names it with wipefs (discover.missed_signatures)."""
    sigs: tuple[str, ...] = ()
    if always or dev.fstype or dev.pttype:
        sigs = parse_wipefs(run(["wipefs", "--no-act", "--json", dev.real]).stdout)
    return BlockDevice(**{**dev.__dict__, "path": label, "signatures": sigs})


# ------------------------------------------------------------------ mounts

# util-linux's findmnt reads /proc/self/mountinfo and undoes its octal escapes; --list
# gives every mount flat, in mountinfo's order (so the last at a path is the topmost).
# OPTIONS is the per-mount and the superblock options together.
FINDMNT_ARGV = ("findmnt", "--json", "--list", "-o", "TARGET,SOURCE,FSTYPE,MAJ:MIN,OPTIONS")


@record
class Mount(Record):
    target: str
    devno: str  # "major:minor" of the mounted filesystem's device
    fstype: str
    source: str
    options: frozenset[str]  # per-mount and superblock options


def parse_findmnt(text: str) -> tuple[Mount, ...]:
    """Every mount in `findmnt --json --list` output (the columns of FINDMNT_ARGV)."""
    if not text.strip():
        return ()
    return tuple(
        Mount(
            target=fs.get("target") or "",
            devno=fs.get("maj:min") or "",
            fstype=fs.get("fstype") or "",
            source=fs.get("source") or "",
            options=frozenset((fs.get("options") or "").split(",")) - {""},
        )
        for fs in json.loads(text).get("filesystems", [])
    )


def probe_mounts() -> tuple[Mount, ...]:
    """What is mounted, and where: one findmnt call."""
    return parse_findmnt(run(FINDMNT_ARGV).stdout)


def mount_at(mounts: Iterable[Mount], path: str) -> Mount | None:
    """The filesystem mounted at exactly `path` (the topmost one), or None."""
    found = None
    for m in mounts:
        if m.target == path:
            found = m
    return found


def devno(path: str) -> str | None:
    """'major:minor' of a block device node (as findmnt's MAJ:MIN has it), or None when
    it does not exist."""
    try:
        rdev = os.stat(path).st_rdev
    except OSError:
        return None
    return f"{os.major(rdev)}:{os.minor(rdev)}"
