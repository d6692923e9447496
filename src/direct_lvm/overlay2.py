"""docker-overlay2: what is mounted at /var/lib/docker (from /proc/self/mountinfo), what
is on our LV, the files that make docker use it, and the verification after apply."""

from __future__ import annotations

import fcntl
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from . import OWNER_TAG
from .errors import VerifyError
from .plan_runtime import MOUNT_UNIT_PATH, OURS, overlay2_args
from .probe import LvmState, parse_wipefs
from .render import render
from .run import run
from .runtime import DOCKER_DROPIN, DOCKER_ROOT
from .spec import Spec
from .units import dm_name

MOUNTINFO = "/proc/self/mountinfo"


@dataclass(frozen=True)
class Mount:
    devno: str  # "major:minor"
    fstype: str
    source: str
    options: frozenset[str]  # per-mount and superblock options


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_at(mountinfo: str, path: str) -> Mount | None:
    """The filesystem mounted at exactly `path` (the last, i.e. topmost, one)."""
    found = None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 3:
            continue
        if _unescape(fields[4]) == path:
            opts = frozenset(fields[5].split(",")) | frozenset(tail[2].split(","))
            found = Mount(fields[2], tail[0], _unescape(tail[1]), opts)
    return found


def devno(path: str) -> str | None:
    """'major:minor' of a block device node, or None when it does not exist."""
    try:
        rdev = os.stat(path).st_rdev
    except OSError:
        return None
    return f"{os.major(rdev)}:{os.minor(rdev)}"


def read_mountinfo() -> str:
    return Path(MOUNTINFO).read_text()


def docker_root_state(spec: Spec) -> tuple[str, tuple[str, ...]]:
    """(what is mounted at /var/lib/docker: "" / OURS / the other source, and what the
    directory holds when it is not our LV, which a takeover moves aside)."""
    m = mount_at(read_mountinfo(), DOCKER_ROOT)
    ours = devno(spec.lv_path)
    if m is not None:
        if ours is not None and m.devno == ours:
            return OURS, ()
        return f"{m.source} ({m.fstype})", ()
    try:
        entries = sorted(os.listdir(DOCKER_ROOT))
    except FileNotFoundError:
        entries = []
    shown = [f"{DOCKER_ROOT}/{e}" for e in entries[:4]] + (["..."] if len(entries) > 4 else [])
    return "", tuple(shown)


def lv_signatures(spec: Spec, lvm: LvmState) -> tuple[str, ...] | None:
    """Signatures on our LV when it exists and is active; None otherwise."""
    lv = lvm.lv(spec.vg, spec.overlay2.lv)
    if lv is None or not lv.active:
        return None
    return parse_wipefs(run(["wipefs", "--no-act", "--json", spec.lv_path]).stdout)


# XFS_IOC_FSGEOMETRY_V1 = _IOR('X', 100, struct xfs_fsop_geom_v1): 112 bytes, starting
# u32 blocksize, rtextsize, agblocks, agcount, logblocks, sectsize, inodesize, imaxpct,
# then u64 datablocks (native byte order)
XFS_IOC_FSGEOMETRY_V1 = 0x80705864
XFS_GEOM_V1_SIZE = 112


def parse_xfs_geometry(geom: bytes) -> int:
    """The data section's size in bytes from a struct xfs_fsop_geom_v1."""
    (blocksize,) = struct.unpack_from("=I", geom, 0)
    (datablocks,) = struct.unpack_from("=Q", geom, 32)
    return int(blocksize) * int(datablocks)


def xfs_size(mountpoint: str) -> int | None:
    """The size of the XFS mounted at `mountpoint`, as the kernel has it (an ioctl, no
    command: a converged boot stays cheap). Not statvfs, which leaves out the internal
    log, and not the on-disk superblock, which lags a growfs until the log is written
    back. None when it cannot be read."""
    try:
        fd = os.open(mountpoint, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        geom = fcntl.ioctl(fd, XFS_IOC_FSGEOMETRY_V1, bytes(XFS_GEOM_V1_SIZE))
    except OSError:
        return None
    finally:
        os.close(fd)
    return parse_xfs_geometry(geom)


def mount_options(spec: Spec) -> str:
    return "defaults,prjquota" if spec.overlay2.container_size is not None else "defaults"


def files(spec: Spec, exec_start: str | None) -> dict[str, str]:
    out = {
        MOUNT_UNIT_PATH: render("var-lib-docker.mount.j2", vg=spec.vg, lv=spec.overlay2.lv,
                                what=spec.lv_path, options=mount_options(spec)),
    }  # fmt: skip
    if exec_start:
        out[DOCKER_DROPIN] = render("docker-overlay2.conf.j2", vg=spec.vg, lv=spec.overlay2.lv,
                                    exec_start=exec_start, args=overlay2_args(spec))  # fmt: skip
    return out


def verify(spec: Spec, lvm: LvmState, *, docker_checked: bool) -> tuple[str, ...]:
    ref = f"{spec.vg}/{spec.overlay2.lv}"
    lv, vg = lvm.lv(spec.vg, spec.overlay2.lv), lvm.vg(spec.vg)
    if lv is None or vg is None:
        raise VerifyError(f"{ref} does not exist after apply", "see the log above")
    problems = []
    if lv.attr[:1] != "-":
        problems.append(f"lv_attr {lv.attr!r}, expected a plain LV ('-...')")
    if OWNER_TAG not in lv.tags or OWNER_TAG not in vg.tags:
        problems.append(f"the {OWNER_TAG} tag is missing on the VG or the LV")
    m = mount_at(read_mountinfo(), DOCKER_ROOT)
    if m is None or m.devno != devno(spec.lv_path):
        problems.append(f"{DOCKER_ROOT} is not mounted from {spec.lv_path}")
    elif m.fstype != "xfs":
        problems.append(f"{DOCKER_ROOT} is {m.fstype}, expected xfs")
    elif spec.overlay2.container_size is not None and not m.options & {"prjquota", "pquota"}:
        problems.append(f"{DOCKER_ROOT} is mounted without project quotas (prjquota)")
    if docker_checked and not problems:
        problems.extend(_verify_docker())
    if problems:
        raise VerifyError(f"{ref} does not match the config: " + "; ".join(problems),
                          "see the log above")  # fmt: skip
    checks = [f"{ref}: plain LV, tagged", f"{DOCKER_ROOT}: xfs on {spec.lv_path}"]
    if docker_checked:
        checks.append(f"docker: overlay2 in {DOCKER_ROOT}")
    return tuple(checks)


def _verify_docker() -> list[str]:
    info = run(["docker", "info", "--format", "{{json .}}"], check=False)
    if info.returncode != 0:
        return [f"docker info failed: {info.stderr.strip()}"]
    data = json.loads(info.stdout)
    out = []
    if data.get("Driver") != "overlay2":
        out.append(f"docker storage driver {data.get('Driver')!r}, expected 'overlay2'")
    if data.get("DockerRootDir") != DOCKER_ROOT:
        out.append(f"Docker Root Dir {data.get('DockerRootDir')!r}, expected {DOCKER_ROOT!r}")
    return out


def volumes(lvm: LvmState, mountinfo: str) -> list[dict[str, object]]:
    """docker-overlay2's LVs: plain LVs tagged direct_lvm in VGs direct-lvm owns, and
    whether each is mounted at /var/lib/docker (for `direct-lvm status`)."""
    out: list[dict[str, object]] = []
    owned = {vg.name for vg in lvm.vgs if vg.owned}
    root = mount_at(mountinfo, DOCKER_ROOT)
    for lv in lvm.lvs:
        if lv.vg in owned and lv.owned and lv.attr[:1] == "-":
            dm = f"/dev/mapper/{dm_name(lv.vg, lv.name)}"
            here = root is not None and root.devno == devno(dm)
            out.append({"vg": lv.vg, "lv": lv.name, "dm_path": dm, "size": lv.size,
                        "mounted_at": DOCKER_ROOT if here else None})  # fmt: skip
    return out
