"""The runtime half of the plan (pure, like plan.py): docker-devicemapper's drop-in,
containerd-devmapper's config and restart, docker-overlay2's dedicated LV, filesystem,
mount unit and drop-in. Takeover of used storage moves it aside, never deletes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import OWNER_TAG
from .errors import ConfigError, RefusedError
from .model import Spec
from .probe import VG
from .runtime import (
    BACKUP_PREFIX,
    DAEMON_JSON,
    DOCKER_DROPIN,
    DOCKER_ROOT,
    DOCKER_SOCKET,
    RestartMode,
    ServiceState,
    daemon_json_conflicts,
)
from .runtimes import Runtime
from .units import MIB, human

if TYPE_CHECKING:
    from .plan import Observed, _Builder

MOUNT_UNIT = "var-lib-docker.mount"
MOUNT_UNIT_PATH = f"/etc/systemd/system/{MOUNT_UNIT}"
MOUNT_WANTS = f"/etc/systemd/system/local-fs.target.wants/{MOUNT_UNIT}"  # enabled
OURS = "ours"  # Observed.docker_root_mount when /var/lib/docker is our LV
MIN_XFS = 300 * MIB  # mkfs.xfs refuses smaller filesystems
XFS_SLACK = 32 * MIB  # filesystem smaller than its LV by more: grow it
MKFS = ("mkfs.xfs", "-q", "-n", "ftype=1")


def _changed_files(b: _Builder, observed: Observed, desired: Mapping[str, str],
                   what: str) -> set[str]:  # fmt: skip
    changed = set()
    for path, content in desired.items():
        if path.endswith(".profile"):
            continue  # written before the pool (plan.py)
        current = observed.files.get(path)
        if current != content:
            b.write(f"{'missing' if current is None else 'differs'}: {what}", path, content)
            changed.add(path)
    return changed


def _check_daemon_json(observed: Observed, extra: tuple[str, ...] = ()) -> None:
    try:
        conflicts = daemon_json_conflicts(observed.daemon_json, extra)
    except ValueError as e:
        raise ConfigError(f"{DAEMON_JSON} is not valid JSON: {e}", f"fix {DAEMON_JSON}") from None
    if conflicts:
        raise ConfigError(
            f"{DAEMON_JSON} sets {', '.join(conflicts)}, and direct-lvm sets docker's storage "
            "as dockerd flags in a drop-in on its own LVM storage; dockerd refuses a setting "
            "given both ways, and a data-root elsewhere would bypass that storage",
            f"remove {', '.join(conflicts)} from {DAEMON_JSON} (direct-lvm owns docker's "
            "storage settings)",
        )


def _reload_if_stale(b: _Builder, service: ServiceState | None) -> None:
    """A run stopped between writing a unit file and daemon-reload: systemd still has
    the old definition, and a restart would use it."""
    if service is not None and service.need_reload:
        b.run(f"systemd has not read {service.unit}'s changed files (NeedDaemonReload)",
              "systemctl", "daemon-reload")  # fmt: skip


def _stop_docker(b: _Builder, docker: ServiceState | None, why: str) -> bool:
    if docker is not None and docker.active:
        b.run(why, "systemctl", "stop", DOCKER_SOCKET, docker.unit)
        return True
    return False


def plan_runtime(
    b: _Builder,
    spec: Spec,
    observed: Observed,
    desired_files: Mapping[str, str],
    *,
    restart: RestartMode,
    grow_fs: bool = False,
) -> None:
    if spec.runtime is Runtime.DOCKER_DEVICEMAPPER:
        _plan_devicemapper(b, spec, observed, desired_files, restart=restart)
    elif spec.runtime is Runtime.CONTAINERD_DEVMAPPER:
        _plan_containerd(b, observed, desired_files, restart=restart)
    else:
        _plan_overlay2(b, spec, observed, desired_files, restart=restart, grow_fs=grow_fs)


def _plan_devicemapper(
    b: _Builder,
    spec: Spec,
    observed: Observed,
    desired_files: Mapping[str, str],
    *,
    restart: RestartMode,
) -> None:
    docker = observed.docker
    _check_daemon_json(observed)
    stopped = False
    if observed.docker_foreign:
        stopped = _stop_docker(b, docker, "docker must stop before its old storage is moved aside")
        b.run(
            f"{DOCKER_ROOT} holds storage that is not on the pool "
            f"({', '.join(observed.docker_foreign)}); kept as a backup, never deleted",
            "mv", "--no-target-directory", DOCKER_ROOT, f"{BACKUP_PREFIX}{observed.timestamp}",
        )  # fmt: skip

    changed = DOCKER_DROPIN in _changed_files(b, observed, desired_files,
                                              "docker's storage options")  # fmt: skip
    if changed:
        b.run("systemd must read the new drop-in", "systemctl", "daemon-reload")
    else:
        _reload_if_stale(b, docker)
    if restart is RestartMode.NEVER or docker is None:
        return
    wanted = f"dm.thinpooldev={spec.pool_path}"
    on_pool = any(a.endswith(wanted) for a in docker.cmdline)
    if restart is RestartMode.BOOT:
        # Never start docker from cloud-init (it is ordered after cloud-init: a blocking
        # start deadlocks the boot); it starts by itself and finds its drop-in in place.
        if docker.active and not stopped and (changed or not on_pool):
            b.run("the running dockerd must pick up the pool (restarted after boot)",
                  "systemctl", "try-restart", "--no-block", docker.unit)  # fmt: skip
        return
    if changed or stopped or not docker.active or not on_pool:
        why = (
            "docker must start with the new storage options" if changed or stopped
            else "docker is not running" if not docker.active
            else f"the running dockerd lacks {wanted}"
        )  # fmt: skip
        b.run(why, "systemctl", "restart", docker.unit)


def _plan_containerd(
    b: _Builder,
    observed: Observed,
    desired_files: Mapping[str, str],
    *,
    restart: RestartMode,
) -> None:
    from .containerd import DROPIN

    ct = observed.containerd
    changed = _changed_files(b, observed, desired_files, "containerd's devmapper snapshotter")
    if DROPIN in changed:
        b.run("systemd must read the new drop-in", "systemctl", "daemon-reload")
    else:
        _reload_if_stale(b, ct)
    if restart is RestartMode.NEVER or ct is None:
        return
    ok = observed.devmapper_status == "ok"
    if restart is RestartMode.BOOT:
        # containerd is ordered after cloud-init (image-setup): never start it from here.
        if ct.active and (changed or not ok):
            b.run("the running containerd must load the devmapper snapshotter (after boot)",
                  "systemctl", "try-restart", "--no-block", ct.unit)  # fmt: skip
        return
    if changed or not ct.active or not ok:
        why = (
            "containerd must read its new config" if changed
            else "containerd is not running" if not ct.active
            else f"containerd's devmapper snapshotter is {observed.devmapper_status or 'absent'}"
        )  # fmt: skip
        b.run(why, "systemctl", "restart", ct.unit)


# ------------------------------------------------------------------ docker-overlay2


def plan_lv(b: _Builder, spec: Spec, observed: Observed, vg: VG | None, vg_bytes: int) -> bool:
    """docker-overlay2's thick LV and its XFS. A new LV gets mkfs; an existing one only
    when it has no signature at all (a run that stopped between lvcreate and mkfs). An
    existing LV grows to data_percent of the (grown) VG, never shrinks. Returns whether
    its XFS must grow to the LV's size (done once the LV is mounted: plan_runtime)."""
    name = spec.overlay2.lv
    ref = f"{spec.vg}/{name}"
    lv = observed.lvm.lv(spec.vg, name) if vg is not None else None
    if lv is None or vg is None:
        size = vg_bytes * spec.data_percent // 100
        if size < MIN_XFS:
            raise RefusedError(
                f"the LV {ref} would be {human(size)} ({spec.data_percent}% of "
                f"{human(vg_bytes)}), below XFS's minimum of 300 MiB",
                "use a larger device or a higher data_percent",
            )
        if vg is not None and size > vg.free:
            raise RefusedError(
                f"volume group {spec.vg!r} has {human(vg.free)} free, not enough for the "
                f"{human(size)} LV {ref}",
                f"free space in {spec.vg!r} (lvs {spec.vg}) or lower data_percent",
            )
        b.facts.append(f"LV {ref}: {spec.data_percent}%VG (~{human(size)}), linear, XFS")
        b.run(
            f"LV {ref} does not exist",
            "lvcreate", "--yes", "--type", "linear", "--name", name,
            "--extents", f"{spec.data_percent}%VG", "--addtag", OWNER_TAG, spec.vg,
        )  # fmt: skip
        b.run(f"{ref} has no filesystem", *MKFS, spec.lv_path)
        return False
    if lv.attr[:1] != "-":
        raise RefusedError(
            f"{ref} exists but is not a plain (linear) LV (lv_attr {lv.attr})",
            "choose another overlay2.lv name, or remove that LV if its data is not needed",
        )
    if not lv.owned:
        b.run(f"{ref} lacks the {OWNER_TAG} tag", "lvchange", "--addtag", OWNER_TAG, ref)
    if not lv.active:
        b.run(f"{ref} is not active", "lvchange", "--activate", "y", ref)
    sigs = observed.lv_signatures
    if sigs is not None and sigs not in ((), ("xfs",)):
        raise RefusedError(
            f"{ref} holds {', '.join(sigs)}, not the XFS docker-overlay2 uses; refusing to "
            "format it",
            f"check what is on it (wipefs --no-act {spec.lv_path}); if its data is not "
            f"needed, wipefs --all {spec.lv_path} and apply again",
        )
    ext = vg.extent_size
    have, want = lv.size // ext, vg.extent_count * spec.data_percent // 100
    grow = min(want - have, vg.free_count)
    if grow > 0:
        b.run(
            f"{ref} is {human(lv.size)}; data_percent {spec.data_percent} of the "
            f"{human(vg.size)} volume group is {human(want * ext)}",
            "lvextend", "--extents", str(have + grow), ref,
        )  # fmt: skip
    elif have > want:
        b.facts.append(
            f"{ref} is {human(lv.size)}, above data_percent {spec.data_percent} of the VG "
            f"({human(want * ext)}); an LV never shrinks, left as it is"
        )
    if sigs == ():
        # without -f, mkfs.xfs itself refuses a device that holds a filesystem
        b.run(f"{ref} has no filesystem", *MKFS, spec.lv_path)
        return False
    # a run stopped between lvextend and xfs_growfs left the filesystem smaller than the
    # LV; mkfs and growfs may leave up to one minimal allocation group (16 MiB) unused
    behind = observed.fs_bytes is not None and lv.size - observed.fs_bytes > XFS_SLACK
    return sigs == ("xfs",) and (grow > 0 or behind)


def overlay2_args(spec: Spec) -> list[str]:
    args = ["--storage-driver=overlay2"]
    if spec.overlay2.container_size is not None:
        args.append(f"--storage-opt=overlay2.size={spec.overlay2.container_size}")
    return args


def _plan_overlay2(
    b: _Builder,
    spec: Spec,
    observed: Observed,
    desired_files: Mapping[str, str],
    *,
    restart: RestartMode,
    grow_fs: bool = False,
) -> None:
    docker = observed.docker
    _check_daemon_json(observed, ("data-root", "graph"))
    mount = observed.docker_root_mount
    if mount and mount != OURS:
        raise RefusedError(
            f"{DOCKER_ROOT} is a mount of {mount}, not of {spec.lv_path}; refusing to mount "
            "over it",
            "unmount it (and remove it from /etc/fstab), or keep it and do not use "
            "runtime docker-overlay2",
        )
    on_lv = mount == OURS
    stopped = False
    if not on_lv and observed.docker_foreign:
        stopped = _stop_docker(b, docker, f"docker must stop before {DOCKER_ROOT} is moved aside")
        b.run(
            f"{DOCKER_ROOT} holds data that is not on {spec.vg}/{spec.overlay2.lv} "
            f"({', '.join(observed.docker_foreign)}); kept as a backup, never deleted",
            "mv", "--no-target-directory", DOCKER_ROOT, f"{BACKUP_PREFIX}{observed.timestamp}",
        )  # fmt: skip
    changed = _changed_files(b, observed, desired_files, "docker's storage on its own LV")
    if changed:
        b.run("systemd must read the new units", "systemctl", "daemon-reload")
    else:
        _reload_if_stale(b, docker)
    if not observed.mount_enabled:
        b.run(f"{MOUNT_UNIT} must mount the LV on every boot (local-fs.target)",
              "systemctl", "enable", MOUNT_UNIT)  # fmt: skip
    if not on_lv:
        b.run(f"{DOCKER_ROOT} is not on {spec.lv_path} yet", "systemctl", "start", MOUNT_UNIT)
    elif MOUNT_UNIT_PATH in changed:
        stopped = stopped or _stop_docker(b, docker, "docker must stop for a remount")
        b.run("the mount options changed (XFS quotas need a fresh mount)",
              "systemctl", "restart", MOUNT_UNIT)  # fmt: skip
    if grow_fs:  # XFS grows online, through its mount point
        b.run(f"the XFS on {spec.lv_path} must grow to the LV's size", "xfs_growfs", "-d",
              DOCKER_ROOT)  # fmt: skip
    if restart is RestartMode.NEVER or docker is None:
        return
    flags = overlay2_args(spec)
    has_flags = all(f in docker.cmdline for f in flags)
    moved = stopped or not on_lv
    if restart is RestartMode.BOOT:
        # never a blocking start from cloud-init: docker is ordered after it
        if stopped:
            b.run("docker was running; it starts again on its LV (after boot)",
                  "systemctl", "start", "--no-block", docker.unit)  # fmt: skip
        elif docker.active and (DOCKER_DROPIN in changed or not has_flags or moved):
            b.run("the running dockerd must move to its LV (restarted after boot)",
                  "systemctl", "try-restart", "--no-block", docker.unit)  # fmt: skip
        return
    if changed or moved or not docker.active or not has_flags:
        why = (
            "docker must start on its LV with overlay2" if changed or moved
            else "docker is not running" if not docker.active
            else f"the running dockerd lacks {' '.join(flags)}"
        )  # fmt: skip
        b.run(why, "systemctl", "restart", docker.unit)
