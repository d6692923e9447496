"""A runtime's root directory on a dedicated thick LV with XFS, written once for every
plain-LV runtime (docker-overlay2 at /var/lib/docker; containerd-overlayfs and podman
the same way at theirs):

- probe: what is mounted at the root (one `findmnt --json`), what the directory
  holds when it is not our LV, the LV's signatures, the XFS's size (an ioctl), whether
  the mount unit is enabled (`probe_root`);
- plan: the thick LV (create, mkfs.xfs, extend to data_percent, never shrink;
  `plan_lv`), the takeover (stop the runtime, move the directory aside, never delete;
  `move_aside`), the refusal of another filesystem mounted there (`refuse_other_mount`),
  the mount unit (enable, start, remount on changed options) and the online grow
  (`plan_mount`);
- verify: our LV, tagged, XFS, mounted at the root (`root_problems`); status: every
  plain LV we own and where it is mounted (`volumes`).

A runtime passes its own names in: its root, its mount unit (`mount_unit_name(root)`),
its runtime's name for messages, and its config's LV field (e.g. "overlay2.lv").
`LvRootPlugin` puts these pieces together as a Plugin (section, LV, takeover refused
under running containers, mount, grow, verify, reset): containerd-overlayfs and podman
subclass it and add only their files, config refusals, restart and own report."""

from __future__ import annotations

import fcntl
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .. import OWNER_TAG
from ..errors import ConfigError, RefusedError, VerifyError
from ..observed import OURS, RootState, RuntimeState
from ..plan import claim_lv
from ..probe import VG, LvmState, Mount, devno, mount_at, parse_wipefs, probe_mounts
from ..render import render
from ..run import run
from ..status import VolumeStatus
from ..steps import Kind, PlanBuilder, Step, run_step
from ..units import MIB, dm_name, human
from ._systemd import ServiceState, daemon_reload, stop
from .base import PlanInput, Plugin, ResetState, VerifyInput, write_changed

if TYPE_CHECKING:
    from ..model import Spec
    from ..observed import Observed

MIN_XFS = 300 * MIB  # mkfs.xfs refuses smaller filesystems
XFS_SLACK = 32 * MIB  # filesystem smaller than its LV by more: grow it
MKFS = ("mkfs.xfs", "-q", "-n", "ftype=1")
WANTS_DIR = "/etc/systemd/system/local-fs.target.wants"


def mount_unit_name(root: str) -> str:
    """systemd's unit name for a mount point (systemd-escape --path --suffix=mount):
    /var/lib/docker -> var-lib-docker.mount."""
    out = []
    for i, c in enumerate(root.strip("/")):
        if c == "/":
            out.append("-")
        elif c.isalnum() or c in ":_" or (c == "." and i > 0):
            out.append(c)
        else:
            out.append("".join(f"\\x{b:02x}" for b in c.encode()))
    return "".join(out) + ".mount"


# ------------------------------------------------------------------ probe


def root_mount(lv_path: str, root: str, mounts: Sequence[Mount]) -> tuple[str, tuple[str, ...]]:
    """(what is mounted at `root`: "" / OURS / the other source, and what the directory
    holds when it is not our LV, which a takeover moves aside)."""
    m = mount_at(mounts, root)
    ours = devno(lv_path)
    if m is not None:
        if ours is not None and m.devno == ours:
            return OURS, ()
        return f"{m.source} ({m.fstype})", ()
    try:
        entries = sorted(os.listdir(root))
    except FileNotFoundError:
        entries = []
    shown = [f"{root}/{e}" for e in entries[:4]] + (["..."] if len(entries) > 4 else [])
    return "", tuple(shown)


def lv_signatures(lvm: LvmState, vg: str, lv: str, lv_path: str) -> tuple[str, ...] | None:
    """Signatures on our LV when it exists and is active; None otherwise."""
    found = lvm.lv(vg, lv)
    if found is None or not found.active:
        return None
    return parse_wipefs(run(["wipefs", "--no-act", "--json", lv_path]).stdout)


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


def probe_root_dir(lv_path: str, root: str) -> tuple[RootState, tuple[str, ...]]:
    """Before LVM is probed: (what is mounted at the root, what the directory holds that
    is not ours)."""
    mounts = probe_mounts()  # one findmnt call
    mount, foreign = root_mount(lv_path, root, mounts)
    # a takeover must not move the directory from under running containers
    busy = busy_below(mounts, root) if foreign else ()
    return RootState(mount=mount, busy=busy, at_root=mount_at(mounts, root)), foreign


def probe_lv(
    state: RootState, lvm: LvmState, vg: str, lv: str, lv_path: str, root: str
) -> RootState:
    """After LVM is probed: the LV's signatures, whether the mount unit is enabled, and
    the XFS's size when our LV is mounted at the root."""
    return replace(
        state,
        signatures=lv_signatures(lvm, vg, lv, lv_path),
        mount_enabled=os.path.lexists(f"{WANTS_DIR}/{mount_unit_name(root)}"),
        fs_bytes=xfs_size(root) if state.mount == OURS else None,
    )


def root_is_ours(mounts: Sequence[Mount], root: str, lv_path: str) -> bool:
    m = mount_at(mounts, root)
    return m is not None and m.devno == devno(lv_path)


# ------------------------------------------------------------------ plan (pure)


def plan_lv(
    b: PlanBuilder,
    *,
    vg_name: str,
    lv_name: str,
    lv_path: str,
    data_percent: int,
    lvm: LvmState,
    root: RootState | None,
    vg: VG | None,
    vg_bytes: int,
    runtime: str,
    lv_field: str,
) -> bool:
    """The runtime's thick LV and its XFS. A new LV gets mkfs; an existing one only
    when it has no signature at all (a run that stopped between lvcreate and mkfs). An
    existing LV grows to data_percent of the (grown) VG, never shrinks. Returns whether
    its XFS must grow to the LV's size (done once the LV is mounted: plan_mount)."""
    ref = f"{vg_name}/{lv_name}"
    lv = lvm.lv(vg_name, lv_name) if vg is not None else None
    if lv is None or vg is None:
        size = vg_bytes * data_percent // 100
        if size < MIN_XFS:
            raise RefusedError(
                f"the LV {ref} would be {human(size)} ({data_percent}% of "
                f"{human(vg_bytes)}), below XFS's minimum of 300 MiB",
                "use a larger device or a higher data_percent",
            )
        if vg is not None and size > vg.free:
            raise RefusedError(
                f"volume group {vg_name!r} has {human(vg.free)} free, not enough for the "
                f"{human(size)} LV {ref}",
                f"free space in {vg_name!r} (lvs {vg_name}) or lower data_percent",
            )
        b.fact(f"LV {ref}: {data_percent}%VG (~{human(size)}), linear, XFS")
        b.run(
            f"LV {ref} does not exist",
            "lvcreate", "--yes", "--type", "linear", "--name", lv_name,
            "--extents", f"{data_percent}%VG", "--addtag", OWNER_TAG, vg_name,
            kind=Kind.LVM,
        )  # fmt: skip
        b.run(f"{ref} has no filesystem", *MKFS, lv_path, kind=Kind.MKFS)
        return False
    if lv.attr[:1] != "-":
        raise RefusedError(
            f"{ref} exists but is not a plain (linear) LV (lv_attr {lv.attr})",
            f"choose another {lv_field} name, or remove that LV if its data is not needed",
        )
    claim_lv(b, lv, ref)
    sigs = root.signatures if root is not None else None
    if sigs is not None and sigs not in ((), ("xfs",)):
        raise RefusedError(
            f"{ref} holds {', '.join(sigs)}, not the XFS {runtime} uses; refusing to format it",
            f"check what is on it (wipefs --no-act {lv_path}); if its data is not "
            f"needed, wipefs --all {lv_path} and apply again",
        )
    ext = vg.extent_size
    have, want = lv.size // ext, vg.extent_count * data_percent // 100
    grow = min(want - have, vg.free_count)
    if grow > 0:
        b.run(
            f"{ref} is {human(lv.size)}; data_percent {data_percent} of the "
            f"{human(vg.size)} volume group is {human(want * ext)}",
            "lvextend", "--extents", str(have + grow), ref,
            kind=Kind.LVM,
        )  # fmt: skip
    elif have > want:
        b.fact(
            f"{ref} is {human(lv.size)}, above data_percent {data_percent} of the VG "
            f"({human(want * ext)}); an LV never shrinks, left as it is"
        )
    if sigs == ():
        # without -f, mkfs.xfs itself refuses a device that holds a filesystem
        b.run(f"{ref} has no filesystem", *MKFS, lv_path, kind=Kind.MKFS)
        return False
    # a run stopped between lvextend and xfs_growfs left the filesystem smaller than the
    # LV; mkfs and growfs may leave up to one minimal allocation group (16 MiB) unused
    fs_bytes = root.fs_bytes if root is not None else None
    behind = fs_bytes is not None and lv.size - fs_bytes > XFS_SLACK
    return sigs == ("xfs",) and (grow > 0 or behind)


def plan_plugin_lv(
    plugin: Plugin, b: PlanBuilder, spec: Spec, observed: Observed, vg: VG | None, vg_bytes: int
) -> bool:
    """`Plugin.plan_lv` of every runtime on a plain LV: plan_lv with the config's names."""
    return plan_lv(
        b,
        vg_name=spec.vg,
        lv_name=spec.lv,
        lv_path=spec.lv_path,
        data_percent=spec.data_percent,
        lvm=observed.lvm,
        root=observed.runtime.root,
        vg=vg,
        vg_bytes=vg_bytes,
        runtime=plugin.name,
        lv_field=".".join(plugin.lv_field()),
    )


def refuse_other_mount(root: RootState | None, where: str, lv_path: str, runtime: str) -> bool:
    """Refuse another filesystem mounted at the runtime's root. Returns whether our LV
    is mounted there."""
    mount = root.mount if root is not None else ""
    if mount and mount != OURS:
        raise RefusedError(
            f"{where} is a mount of {mount}, not of {lv_path}; refusing to mount over it",
            "unmount it (and remove it from /etc/fstab), or keep it and do not use "
            f"runtime {runtime}",
        )
    return mount == OURS


def move_aside(
    b: PlanBuilder,
    service: ServiceState | None,
    units: tuple[str, ...],
    *,
    path: str,
    backup: str,
    why_stop: str,
    why: str,
) -> bool:
    """Takeover: stop the runtime (when it runs) and rename `path` to `backup`, kept,
    never deleted. Returns whether the runtime was stopped."""
    stopped = stop(b, service, units, why_stop)
    b.run(why, "mv", "--no-target-directory", path, backup, kind=Kind.MOVE_ASIDE)
    return stopped


def take_over(
    b: PlanBuilder,
    observed: Observed,
    service: ServiceState | None,
    units: tuple[str, ...],
    root: str,
    label: str,
    ref: str,
) -> bool:
    """A root that holds data not on our LV (`ref`): stop the runtime and move the root
    aside as `<root>.direct-lvm-backup-<time>`, kept, never deleted. Returns whether the
    runtime was stopped."""
    return move_aside(
        b,
        service,
        units,
        path=root,
        backup=f"{root}.direct-lvm-backup-{observed.timestamp}",
        why_stop=f"{label} must stop before {root} is moved aside",
        why=f"{root} holds data that is not on {ref} "
        f"({', '.join(observed.runtime.foreign)}); kept as a backup, never deleted",
    )


def plan_mount(
    b: PlanBuilder,
    *,
    root: str,
    root_state: RootState | None,
    on_lv: bool,
    lv_path: str,
    mount_changed: bool,
    grow_fs: bool,
    service: ServiceState | None,
    units: tuple[str, ...],
    runtime_label: str,
    stopped: bool,
) -> bool:
    """Enable the mount unit, start it when the root is not on our LV yet, remount when
    its options changed (the runtime stops first, unless this plan `stopped` it
    already), grow the XFS online. Returns whether the runtime is stopped by now."""
    unit = mount_unit_name(root)
    if root_state is None or not root_state.mount_enabled:
        b.run(
            f"{unit} must mount the LV on every boot (local-fs.target)",
            "systemctl",
            "enable",
            unit,
            kind=Kind.UNIT,
        )
    if not on_lv:
        b.run(f"{root} is not on {lv_path} yet", "systemctl", "start", unit, kind=Kind.UNIT)
    elif mount_changed:
        stopped = stopped or stop(b, service, units, f"{runtime_label} must stop for a remount")
        b.run(
            "the mount options changed (XFS quotas need a fresh mount)",
            "systemctl",
            "restart",
            unit,
            kind=Kind.UNIT,
        )
    if grow_fs:  # XFS grows online, through its mount point
        b.run(f"the XFS on {lv_path} must grow to the LV's size", "xfs_growfs", "-d", root,
              kind=Kind.GROW_FS)  # fmt: skip
    return stopped


# ------------------------------------------------------------------ verify, status


def root_problems(
    lvm: LvmState,
    vg: str,
    lv: str,
    lv_path: str,
    root: str,
    *,
    quotas: bool,
    probed: RuntimeState | None = None,
) -> list[str]:
    """What differs from our LV, tagged, with XFS mounted at `root` (with project
    quotas when `quotas`). The mount is the one `probed` found (a converged run: nothing
    ran since), else findmnt is asked again."""
    found, group = lvm.lv(vg, lv), lvm.vg(vg)
    problems = []
    if found is None or group is None:
        return [f"{vg}/{lv} does not exist"]
    if found.attr[:1] != "-":
        problems.append(f"lv_attr {found.attr!r}, expected a plain LV ('-...')")
    if OWNER_TAG not in found.tags or OWNER_TAG not in group.tags:
        problems.append(f"the {OWNER_TAG} tag is missing on the VG or the LV")
    if probed is not None and probed.root is not None:
        m = probed.root.at_root
    else:
        m = mount_at(probe_mounts(), root)
    if m is None or m.devno != devno(lv_path):
        problems.append(f"{root} is not mounted from {lv_path}")
    elif m.fstype != "xfs":
        problems.append(f"{root} is {m.fstype}, expected xfs")
    elif quotas and not m.options & {"prjquota", "pquota"}:
        problems.append(f"{root} is mounted without project quotas (prjquota)")
    return problems


def volumes(lvm: LvmState, mounts: Sequence[Mount], roots: Iterable[str]) -> list[VolumeStatus]:
    """The plain LVs tagged direct_lvm in VGs direct-lvm owns, and which runtime root
    each is mounted at (for `direct-lvm status`)."""
    out = []
    owned = {vg.name for vg in lvm.vgs if vg.owned}
    at_roots = [(r, m) for r in roots if (m := mount_at(mounts, r)) is not None]
    for lv in lvm.lvs:
        if lv.vg in owned and lv.owned and lv.attr[:1] == "-":
            dm = f"/dev/mapper/{dm_name(lv.vg, lv.name)}"
            here = next((r for r, m in at_roots if m.devno == devno(dm)), None)
            out.append(VolumeStatus(lv.vg, lv.name, dm, lv.size, here))
    return out


def reset_unmount(root: str, lv_path: str, ours: bool, enabled: bool) -> list[Step]:
    """Reset: unmount our LV from the root and keep its mount unit from mounting it at
    boot."""
    unit = mount_unit_name(root)
    steps = []
    if ours:
        steps.append(
            run_step(f"{root} is {lv_path}: unmount it", "systemctl", "stop", unit, kind=Kind.UNIT)
        )
    if enabled:
        steps.append(
            run_step(
                f"{unit} must not mount it at boot", "systemctl", "disable", unit, kind=Kind.UNIT
            )
        )
    return steps


# ------------------------------------------------------------------ more shared pieces


def read_text(path: str) -> str | None:
    """A runtime's own config file, or None when there is none."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        return None


def busy_below(mounts: Sequence[Mount], root: str) -> tuple[str, ...]:
    """Mounts that a running container holds in `root`: mount points below it, and
    overlay mounts elsewhere (containerd's task rootfs in /run) whose layers are in it."""
    return tuple(
        m.target
        for m in mounts
        if m.target.startswith(root + "/")
        or (m.fstype == "overlay" and any(f"{root}/" in o for o in m.options))
    )


def refuse_busy(busy: tuple[str, ...], root: str, runtime: str) -> None:
    """A takeover moves `root` aside: refused while containers run on it."""
    if busy:
        shown = ", ".join(busy[:3]) + (f" and {len(busy) - 3} more" if len(busy) > 3 else "")
        raise RefusedError(
            f"{root} is in use by running containers ({shown}); refusing to move it aside "
            "under them",
            f"stop the containers first ({runtime}), then apply again",
        )


# ------------------------------------------------------------------ the plugin's share


@dataclass(frozen=True)
class LvOptions:
    """The section of a runtime whose only option is its LV's name."""

    lv: str


class LvRootPlugin(Plugin):
    """What every runtime on a plain LV at its root does the same way (containerd-
    overlayfs, podman): its section ({lv: NAME}), the LV and its XFS, the takeover, the
    mount and the online grow, verify's storage half, reset's unmount. A runtime adds
    its files, its refusals, its restart and its own view after a restart."""

    thin = False
    default_data_percent = 100  # one LV, no pool to autoextend: the whole VG
    root: ClassVar[str]
    label: ClassVar[str]  # the runtime's name in reasons ("containerd")

    package: ClassVar[str]  # the Debian package that installs the runtime

    def check(self, spec: Spec, state: RuntimeState) -> None:
        """The gate: the runtime is installed (its probe says so in state.service)."""
        if state.service is None or not state.service.installed:
            raise ConfigError(
                f"runtime {self.name} needs {self.label}, but it is not installed (no "
                f"{self.package} package or {self.label} binary)",
                f"install {self.package} (apt-get install {self.package}) or choose another "
                "runtime",
            )

    @property
    def mount_unit_path(self) -> str:
        return f"/etc/systemd/system/{mount_unit_name(self.root)}"

    def parse_section(self, raw: Mapping[str, Any]) -> LvOptions:
        return LvOptions(lv=str(raw["lv"]))

    def section_mapping(self, spec: Spec) -> dict[str, Any]:
        return {str(self.section): {"lv": spec.lv}}

    def lv_field(self) -> tuple[str, ...]:
        return (str(self.section), "lv")

    def mount_unit(self, spec: Spec, before: str | None) -> str:
        return render(
            "lvroot.mount.j2",
            vg=spec.vg,
            lv=spec.lv,
            what=spec.lv_path,
            root=self.root,
            runtime=self.label,
            before=before,
        )

    def probe_lv(self, spec: Spec, lvm: LvmState, state: RuntimeState) -> RuntimeState:
        root = probe_lv(state.root or RootState(), lvm, spec.vg, spec.lv, spec.lv_path, self.root)
        return replace(state, root=root)

    def plan_lv(
        self, b: PlanBuilder, spec: Spec, observed: Observed, vg: VG | None, vg_bytes: int
    ) -> bool:
        return plan_plugin_lv(self, b, spec, observed, vg, vg_bytes)

    def plan_storage(
        self,
        b: PlanBuilder,
        spec: Spec,
        observed: Observed,
        files: Mapping[str, str],
        *,
        service: ServiceState | None,
        grow_fs: bool,
    ) -> tuple[bool, bool, set[str]]:
        """Refuse another mount at the root (and a takeover under running containers),
        move what the root holds aside, write the files, reload systemd, mount, grow.
        Returns (our LV was already mounted, the runtime was stopped, the files written)."""
        state, root = observed.runtime, self.root
        on_lv = refuse_other_mount(state.root, root, spec.lv_path, self.name)
        stopped = False
        if not on_lv and state.foreign:
            refuse_busy(state.root.busy if state.root else (), root, self.label)
            stopped = take_over(b, observed, service, self.units, root, self.label, spec.ref)
        changed = write_changed(b, observed, files, f"{self.label}'s storage on its own LV")
        # also before the first start of the mount: a run stopped between writing the
        # unit and the reload left systemd without it
        reload_why = f"systemd must read {mount_unit_name(root)} before it mounts the LV"
        daemon_reload(b, bool(changed) or not on_lv, service, reload_why)
        stopped = plan_mount(
            b,
            root=root,
            root_state=state.root,
            on_lv=on_lv,
            lv_path=spec.lv_path,
            mount_changed=False,
            grow_fs=grow_fs,
            service=service,
            units=self.units,
            runtime_label=self.label,
            stopped=stopped,
        )
        return on_lv, stopped, changed

    def plan(self, b: PlanBuilder, p: PlanInput) -> None:
        spec, observed, files = p.spec, p.observed, p.files
        service = observed.runtime.service
        self.refuse_config(b, spec, observed.runtime, files)
        on_lv, stopped, _ = self.plan_storage(
            b, spec, observed, files, service=service, grow_fs=p.grow_fs
        )
        self.plan_restart(b, p, moved=stopped or not on_lv, stopped=stopped)

    def refuse_config(
        self, b: PlanBuilder, spec: Spec, state: RuntimeState, files: Mapping[str, str]
    ) -> None:
        """Raise ConfigError when the runtime's own config would put its storage
        elsewhere (pure, before any step of the runtime's). Default: nothing to read."""

    def plan_restart(self, b: PlanBuilder, p: PlanInput, *, moved: bool, stopped: bool) -> None:
        """The runtime's restart once its storage is in place (`moved`: the root was not
        on our LV before this plan; `stopped`: this plan stopped the runtime)."""

    def runtime_problems(self) -> list[str]:
        """After a restart the plan waited for: what the runtime itself reports that
        differs from our storage (one process). Default: nothing to ask."""
        return []

    def verify(self, v: VerifyInput) -> tuple[str, ...]:
        spec, lvm, restarted, probed = v.spec, v.lvm, v.restarted, v.probed
        problems = root_problems(
            lvm, spec.vg, spec.lv, spec.lv_path, self.root, quotas=False, probed=probed
        )
        if restarted and not problems:
            problems = self.runtime_problems()
        if problems:
            raise VerifyError(
                f"{spec.ref} does not match the config: " + "; ".join(problems), "see the log above"
            )
        checks = (f"{spec.ref}: plain LV, tagged", f"{self.root}: xfs on {spec.lv_path}")
        return (*checks, *([f"{self.label}: its storage is {self.root}"] if restarted else []))

    def containers(self, active: tuple[str, ...]) -> tuple[str, ...]:
        """Reset: the runtime's containers (never start a unit to ask). Default: none."""
        return ()

    def reset_probe(
        self, spec: Spec, active: tuple[str, ...], mounts: Sequence[Mount]
    ) -> ResetState:
        return ResetState(
            containers=self.containers(active),
            root_ours=root_is_ours(mounts, self.root, spec.lv_path),
            mount_enabled=os.path.lexists(f"{WANTS_DIR}/{mount_unit_name(self.root)}"),
        )

    def reset_unmount(self, spec: Spec, state: ResetState) -> list[Step]:
        return reset_unmount(self.root, spec.lv_path, state.root_ours, state.mount_enabled)
