"""`direct-lvm reset`: undo what direct-lvm made for one config, and nothing else.

Ownership is read back from LVM (the direct_lvm tag) and from the files' own first line
("# Written by direct-lvm for <vg>/<lv>"), never from a state file. The steps are planned
first by a pure function of the observed state (plan_reset), run through run.py, then the
system is re-probed and verified. The moved-aside backups of docker's earlier storage are
never touched; they are listed."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import OWNER_TAG, containerd
from .core import BOOT_CONFIG_FILE, LAST_APPLY, exclusive, execute, profile_path, read_file
from .errors import ConfigError, RefusedError, VerifyError
from .model import Spec
from .overlay2 import devno, mount_at, read_mountinfo
from .plan import DEVICE_RECORD, Action, Plan, Step, device_record
from .plan_runtime import MOUNT_UNIT, MOUNT_UNIT_PATH, MOUNT_WANTS
from .probe import LV, LvmState, parse_wipefs, probe_lvm
from .render import toml_str
from .run import run
from .runtime import BACKUP_PREFIX, DOCKER_DROPIN, DOCKER_ROOT, DOCKER_SOCKET, backups, find_unit
from .runtimes import Runtime

log = logging.getLogger("direct_lvm")

DOCKER_UNITS = (DOCKER_SOCKET, "docker.service")  # the socket first: it would restart docker
RESET_SUFFIX = "-reset"  # docker's state on a removed pool: BACKUP_PREFIX<time>-reset
# Where a container's root filesystem is mounted while it runs (docker's overlay2 and
# devicemapper drivers, containerd's tasks).
CONTAINER_MOUNTS = (
    re.compile(re.escape(DOCKER_ROOT) + r"/overlay2/[^/]+/merged$"),
    re.compile(re.escape(DOCKER_ROOT) + r"/devicemapper/mnt/[^/]+$"),
    re.compile(r"/run/containerd/io\.containerd\.runtime\.v2\.task/[^/]+/[^/]+/rootfs$"),
)
MARK = "# Written by direct-lvm for "


@dataclass(frozen=True)
class ResetObserved:
    lvm: LvmState
    files: Mapping[str, str | None] = field(default_factory=dict)  # path -> content
    active_units: tuple[str, ...] = ()  # the runtime's units that are active
    containers: tuple[str, ...] = ()  # containers that exist (ids, or "<ns>/<id>")
    container_mounts: tuple[str, ...] = ()  # container root filesystems mounted
    docker_root_ours: bool = False  # docker-overlay2: our LV is mounted at /var/lib/docker
    mount_enabled: bool = False  # docker-overlay2: var-lib-docker.mount is enabled
    pool_state: str = ""  # the runtime's own metadata about the pool's devices (a dir)
    snap_devices: tuple[str, ...] = ()  # containerd's thin devices on the pool (dm names)
    backups: tuple[str, ...] = ()
    timestamp: str = "00000000T000000Z"
    boot_config: bool = False  # BOOT_CONFIG_FILE exists (the next boot applies it)


@dataclass(frozen=True)
class ResetPlan:
    plan: Plan
    kept: tuple[str, ...]  # backups of docker's earlier storage: listed, never touched
    stopped: tuple[str, ...]  # the runtime's units this reset stops (and leaves stopped)
    removed_files: tuple[str, ...]
    pvs: tuple[str, ...]  # devices that are blank afterwards
    moved: tuple[str, ...] = ()  # (destination) the runtime's pool metadata, moved aside
    config_toml: str | None = None  # containerd's config.toml as it must be afterwards

    def to_json(self) -> dict[str, Any]:
        return {
            **self.plan.to_json(),
            "kept": list(self.kept),
            "stopped": list(self.stopped),
            "removed_files": list(self.removed_files),
            "pvs": list(self.pvs),
            "moved": list(self.moved),
        }


def managed_paths(spec: Spec) -> tuple[str, ...]:
    """Every file direct-lvm may have written for this config (the device record and
    containerd's config.toml are edited, not simply removed)."""
    if spec.runtime is Runtime.DOCKER_OVERLAY2:
        paths: tuple[str, ...] = (DOCKER_DROPIN, MOUNT_UNIT_PATH)
    elif spec.runtime is Runtime.CONTAINERD_DEVMAPPER:
        paths = (profile_path(spec), containerd.FRAGMENT, containerd.DROPIN, containerd.CONFIG)
    else:
        paths = (profile_path(spec), DOCKER_DROPIN)
    return (*paths, DEVICE_RECORD, LAST_APPLY)


def written_for(text: str | None, spec: Spec) -> bool:
    """The file's first line says direct-lvm wrote it for this config's pool or LV."""
    first = (text or "").split("\n", 1)[0]
    return first.startswith(MARK) and f" {spec.ref};" in first


def runtime_units(spec: Spec) -> tuple[str, ...]:
    if spec.runtime is Runtime.CONTAINERD_DEVMAPPER:
        return (containerd.CONTAINERD_UNIT,)
    return DOCKER_UNITS


# ------------------------------------------------------------------ the plan (pure)


def _hidden(lv: LV) -> bool:
    return lv.name.startswith("[")  # a pool's _tdata/_tmeta, lvm's pmspare


def _lv_steps(spec: Spec, lvm: LvmState, facts: list[str]) -> tuple[list[Step], tuple[str, ...]]:
    """lvremove (ours only), vgremove, pvremove, wipefs; refused for a VG that is not ours
    or that holds someone else's LVs (even with --force)."""
    vg = lvm.vg(spec.vg)
    if vg is None:
        facts.append(f"volume group {spec.vg!r} does not exist: no LVM step")
        return [], ()
    if not vg.owned:
        raise RefusedError(
            f"volume group {spec.vg!r} has no {OWNER_TAG!r} tag: direct-lvm did not make it; "
            "refusing to remove it (even with --force)",
            f"check the vg name in the config; if {spec.vg!r} and its data are not needed, "
            f"remove it yourself (vgremove {spec.vg})",
        )
    lvs = [lv for lv in lvm.lvs if lv.vg == spec.vg and not _hidden(lv)]
    foreign = [f"{lv.vg}/{lv.name}" for lv in lvs if not lv.owned]
    if foreign:
        raise RefusedError(
            f"volume group {spec.vg!r} holds LVs direct-lvm did not make (no {OWNER_TAG!r} "
            f"tag): {', '.join(foreign)}; refusing to remove it (even with --force)",
            "move or back up their data; if it is not needed, remove them yourself "
            f"(lvremove {' '.join(foreign)}), then run reset again",
        )
    steps: list[Step] = []
    # thin volumes before the pools that hold them
    for lv in sorted(lvs, key=lambda v: v.is_thin_pool):
        kind = "thin pool" if lv.is_thin_pool else "LV"
        steps.append(
            Step(
                Action.RUN,
                f"{kind} {lv.vg}/{lv.name} carries the {OWNER_TAG} tag",
                argv=("lvremove", "--yes", f"{lv.vg}/{lv.name}"),
            )
        )
    steps.append(
        Step(
            Action.RUN,
            f"volume group {spec.vg!r} carries the {OWNER_TAG} tag",
            argv=("vgremove", "--yes", spec.vg),
        )
    )
    pvs = tuple(p.name for p in lvm.pvs_of(spec.vg))
    if pvs:
        steps.append(
            Step(
                Action.RUN, f"the physical volumes of {spec.vg!r}", argv=("pvremove", "--yes", *pvs)
            )
        )
        steps.append(
            Step(
                Action.RUN,
                "the disks must be blank, as if new: no signature left",
                argv=("wipefs", "--all", *pvs),
            )
        )
        facts.append(
            f"volume group {spec.vg!r} on {', '.join(pvs)}: "
            + ", ".join(f"{lv.vg}/{lv.name}" for lv in lvs)
            + " will be removed"
        )
    return steps, pvs


def without_import(text: str) -> str | None:
    """containerd's config.toml with our import taken out; None when direct-lvm wrote the
    whole file (there was none), so it goes. Raises ConfigError when the entry cannot be
    taken out without rewriting the rest."""
    data = containerd._parse(text)
    imports = data.get("imports") or []
    if (
        text.startswith("# Written by direct-lvm: there was no config.toml")
        and set(data) == {"version", "imports"}
        and imports == [containerd.FRAGMENT]
    ):
        return None
    rest = [p for p in imports if p != containerd.FRAGMENT]
    top_end = m.start() if (m := containerd._HEADER.search(text)) else len(text)
    found = containerd._IMPORTS.search(text, 0, top_end)
    end = containerd._array_end(text, found.end() - 1) if found is not None else None
    new: str | None = None
    if found is not None and end is not None:
        if rest:
            line = "imports = [" + ", ".join(toml_str(p) for p in rest) + "]"
            new = text[: found.start()] + line + text[end:]
        else:
            head = text[: found.start()]
            ours = (
                f"# imports: direct-lvm added {containerd.FRAGMENT} (its devmapper "
                "snapshotter config);\n# nothing else in this file was changed\n"
            )
            if head.endswith(ours):
                head = head[: -len(ours)]
            tail = text[end:]
            new = head + (tail[1:] if tail.startswith("\n") else tail)
    want = {k: v for k, v in data.items() if k != "imports"}
    if rest:
        want["imports"] = rest
    if new is None or containerd._parse(new) != want:
        raise ConfigError(
            f"cannot take {containerd.FRAGMENT} out of the imports of {containerd.CONFIG} "
            "without rewriting the rest of it",
            f"remove {toml_str(containerd.FRAGMENT)} from its imports yourself, then run "
            "reset again",
        )
    return new


def _file_steps(
    spec: Spec, observed: ResetObserved, facts: list[str]
) -> tuple[list[Step], tuple[str, ...], str | None]:
    steps: list[Step] = []
    removed: list[str] = []
    config_toml: str | None = None
    for path in managed_paths(spec):
        text = observed.files.get(path)
        if text is None:
            continue
        if path == DEVICE_RECORD:
            record = device_record(text)
            rest = {
                dev: e
                for dev, e in record.items()
                if not (isinstance(e, dict) and e.get("vg") == spec.vg)
            }
            if rest == record and record:
                continue
            if rest:
                steps.append(
                    Step(
                        Action.WRITE,
                        f"the device record keeps other VGs' devices only ({spec.vg!r}'s go)",
                        path=path,
                        content=json.dumps(rest, indent=2, sort_keys=True) + "\n",
                    )
                )
                continue
        elif path == LAST_APPLY:
            try:
                last = json.loads(text)
            except ValueError:
                continue
            if not isinstance(last, dict) or last.get("ref") != spec.ref:
                continue
        elif path == containerd.CONFIG:
            if containerd.FRAGMENT not in text:
                continue
            config_toml = without_import(text)
            if config_toml is not None:
                steps.append(
                    Step(
                        Action.WRITE,
                        f"{path}: only direct-lvm's import of "
                        f"{containerd.FRAGMENT} goes; the rest is kept",
                        path=path,
                        content=config_toml,
                    )
                )
                continue
        elif not written_for(text, spec):
            facts.append(f"{path} was not written by direct-lvm for {spec.ref}; left as it is")
            continue
        steps.append(
            Step(
                Action.RUN, f"direct-lvm wrote {path} for {spec.ref}", argv=("rm", "-f", "--", path)
            )
        )
        removed.append(path)
    return steps, tuple(removed), config_toml


def plan_reset(
    spec: Spec, observed: ResetObserved, *, force: bool = False, yes: bool = True
) -> ResetPlan:
    """The steps that undo what direct-lvm made for `spec`. Refuses (RefusedError, exit 2)
    a VG that is not ours or holds someone else's LVs, and, unless force, while
    containers exist (a plan only, `yes` false, says so in a warning instead)."""
    facts: list[str] = []
    notes: list[str] = []
    lv_steps, pvs = _lv_steps(spec, observed.lvm, facts)  # refusals first
    in_use = [*observed.containers, *(f"mounted {m}" for m in observed.container_mounts)]
    if in_use:
        shown = ", ".join(in_use[:8]) + (f" and {len(in_use) - 8} more" if len(in_use) > 8 else "")
        fix = (
            "remove them first (docker rm -f ... / ctr containers rm ...), or run reset "
            "with --force to destroy them with the pool"
        )
        if force:
            notes.append(f"--force: the containers ({shown}) are destroyed with {spec.ref}")
        elif yes:
            raise RefusedError(
                f"containers exist ({shown}); their storage is on {spec.ref}, which reset "
                "removes; refusing",
                fix,
            )
        else:
            notes.append(f"containers exist ({shown}): reset --yes refuses; {fix}")
    file_steps, removed, config_toml = _file_steps(spec, observed, facts)

    steps: list[Step] = []
    stopped = tuple(u for u in runtime_units(spec) if u in observed.active_units)
    if stopped:
        steps.append(
            Step(
                Action.RUN,
                "the runtime must stop before its storage goes (it is left stopped)",
                argv=("systemctl", "stop", *stopped),
            )
        )
    if spec.runtime is Runtime.DOCKER_OVERLAY2:
        if observed.docker_root_ours:
            steps.append(
                Step(
                    Action.RUN,
                    f"{DOCKER_ROOT} is {spec.lv_path}: unmount it",
                    argv=("systemctl", "stop", MOUNT_UNIT),
                )
            )
        if observed.mount_enabled:
            steps.append(
                Step(
                    Action.RUN,
                    f"{MOUNT_UNIT} must not mount it at boot",
                    argv=("systemctl", "disable", MOUNT_UNIT),
                )
            )
    moved: tuple[str, ...] = ()
    if observed.pool_state and lv_steps:
        dest = (
            f"{BACKUP_PREFIX}{observed.timestamp}{RESET_SUFFIX}"
            if observed.pool_state == DOCKER_ROOT
            else f"{observed.pool_state}.direct-lvm{RESET_SUFFIX}-{observed.timestamp}"
        )
        steps.append(
            Step(
                Action.RUN,
                f"{observed.pool_state} describes the devices in {spec.ref}, which goes; moved "
                "aside (kept, never deleted) so the runtime starts clean",
                argv=("mv", "--no-target-directory", observed.pool_state, dest),
            )
        )
        moved = (dest,)
    if observed.snap_devices and lv_steps:
        steps.append(Step(
            Action.RUN,
            "containerd leaves its snapshot devices active on the pool; lvremove needs "
            "them gone (their data goes with the pool)",
            argv=("dmsetup", "remove", "--retry", *observed.snap_devices),
        ))  # fmt: skip
    steps += lv_steps
    steps += file_steps
    if any(p.startswith("/etc/systemd/") for p in removed):
        steps.append(
            Step(
                Action.RUN,
                "systemd must forget the removed units and drop-ins",
                argv=("systemctl", "daemon-reload"),
            )
        )
    if observed.boot_config and steps:
        facts.append(
            f"{BOOT_CONFIG_FILE} exists: cloud-init applies it again at the next boot; "
            "remove it (and any direct_lvm key in the user-data) to keep this undone"
        )
    kept = observed.backups
    for b in kept:
        facts.append(f"docker's earlier storage at {b} is kept (reset never touches it)")
    return ResetPlan(
        Plan(tuple(steps), tuple(notes), tuple(facts)),
        kept,
        stopped,
        removed,
        pvs,
        moved,
        config_toml,
    )


# ------------------------------------------------------------------ probe, run, verify


def _active(units: tuple[str, ...]) -> tuple[str, ...]:
    r = run(["systemctl", "is-active", *units], check=False)
    states = r.stdout.split()
    return tuple(u for u, s in zip(units, states) if s in ("active", "activating", "reloading"))


def container_mounts(mountinfo: str) -> tuple[str, ...]:
    out = []
    for line in mountinfo.splitlines():
        fields = line.split(" - ")[0].split()
        if len(fields) > 4 and any(p.match(fields[4]) for p in CONTAINER_MOUNTS):
            out.append(fields[4])
    return tuple(out)


def snap_devices(dmsetup_table: str, pool_dm_name: str) -> tuple[str, ...]:
    """containerd's devmapper snapshotter names its thin devices <pool_name>-snap-<id>
    (`dmsetup table` lines: "name: start length thin pool-dev id")."""
    out = []
    for line in dmsetup_table.splitlines():
        name, _, table = line.partition(": ")
        if name.startswith(f"{pool_dm_name}-snap-") and table.split()[2:3] == ["thin"]:
            out.append(name)
    return tuple(sorted(set(out)))


def _docker_containers(active: bool) -> tuple[str, ...]:
    """docker ps -aq when dockerd runs (never socket-activate it); else what
    /var/lib/docker/containers holds."""
    if active:
        r = run(["docker", "ps", "-aq", "--no-trunc"], check=False)
        if r.returncode == 0:
            return tuple(r.stdout.split())
    try:
        return tuple(sorted(os.listdir(f"{DOCKER_ROOT}/containers")))
    except OSError:
        return ()


def _containerd_containers() -> tuple[str, ...]:
    """Containers in every containerd namespace but docker's own (moby: docker's storage,
    not the pool)."""
    r = run(["ctr", "namespaces", "ls", "-q"], check=False)
    out: list[str] = []
    for ns in r.stdout.split() if r.returncode == 0 else ["k8s.io", "default"]:
        if ns == "moby":
            continue
        c = run(["ctr", "-n", ns, "containers", "ls", "-q"], check=False)
        out += [f"{ns}/{cid}" for cid in c.stdout.split()] if c.returncode == 0 else []
    return tuple(out)


def observe(spec: Spec) -> ResetObserved:
    lvm = probe_lvm()
    units = runtime_units(spec)
    installed = any(find_unit(u) for u in units)
    active = _active(units) if installed else ()
    mountinfo = read_mountinfo()
    ours = False
    pool_state = ""
    snaps: tuple[str, ...] = ()
    if spec.runtime is Runtime.CONTAINERD_DEVMAPPER:
        containers = _containerd_containers() if active else ()
        table = run(["dmsetup", "table"], check=False).stdout
        snaps = snap_devices(table, spec.pool_dm_name)
        if os.path.isdir(spec.containerd.root_path):
            pool_state = spec.containerd.root_path
    else:
        containers = _docker_containers("docker.service" in active)
        if spec.runtime is Runtime.DOCKER_OVERLAY2:
            m = mount_at(mountinfo, DOCKER_ROOT)
            ours = m is not None and m.devno == devno(spec.lv_path)
        elif os.path.isdir(f"{DOCKER_ROOT}/devicemapper"):
            pool_state = DOCKER_ROOT
    return ResetObserved(
        lvm=lvm,
        files={p: read_file(p) for p in managed_paths(spec)},
        active_units=active,
        containers=containers,
        container_mounts=container_mounts(mountinfo),
        snap_devices=snaps,
        docker_root_ours=ours,
        mount_enabled=os.path.lexists(MOUNT_WANTS),
        pool_state=pool_state,
        backups=tuple(backups()),
        timestamp=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        boot_config=os.path.exists(BOOT_CONFIG_FILE),
    )


@dataclass(frozen=True)
class ResetResult:
    reset: ResetPlan
    applied: bool
    verified: tuple[str, ...] = ()
    seconds: float = 0.0


def verify(spec: Spec, rp: ResetPlan) -> tuple[str, ...]:
    """Re-probe: the VG and its PVs are gone, the disks carry no signature, the files are
    gone (containerd's config.toml without our import), what was moved aside is there."""
    lvm = probe_lvm()
    problems: list[str] = []
    checks: list[str] = []
    if lvm.vg(spec.vg) is not None:
        problems.append(f"volume group {spec.vg!r} still exists")
    else:
        checks.append(f"volume group {spec.vg!r}: gone")
    for dev in rp.pvs:
        if lvm.pv(dev) is not None:
            problems.append(f"{dev} is still a physical volume")
            continue
        sigs = parse_wipefs(run(["wipefs", "--no-act", "--json", dev]).stdout)
        if sigs:
            problems.append(f"{dev} still carries {', '.join(sigs)}")
        else:
            checks.append(f"{dev}: no physical volume, no signature")
    for path in rp.removed_files:
        if os.path.lexists(path):
            problems.append(f"{path} still exists")
        else:
            checks.append(f"{path}: gone")
    if rp.config_toml is not None and read_file(containerd.CONFIG) != rp.config_toml:
        problems.append(f"{containerd.CONFIG} is not what reset wrote")
    for dest in rp.moved:
        if not os.path.isdir(dest):
            problems.append(f"{dest} is missing")
    for kept in rp.kept:
        if not os.path.isdir(kept):
            problems.append(f"the backup {kept} is gone")
    if problems:
        raise VerifyError(
            "reset did not finish: " + "; ".join(problems),
            "see the log above; running reset again picks up where it stopped",
        )
    return tuple(checks)


def reset(spec: Spec, *, yes: bool = False, force: bool = False) -> ResetResult:
    """Plan; with yes, run the plan under apply's lock, then re-probe and verify."""
    start = time.monotonic()
    if not yes:
        rp = plan_reset(spec, observe(spec), force=force, yes=False)
        return ResetResult(rp, applied=False)
    with exclusive():
        rp = plan_reset(spec, observe(spec), force=force)
        if rp.plan.empty:
            return ResetResult(rp, applied=True, seconds=time.monotonic() - start)
        execute(rp.plan.steps)
        checks = verify(spec, rp)
    return ResetResult(rp, applied=True, verified=checks, seconds=time.monotonic() - start)


def restart_hint(stopped: tuple[str, ...], done: bool) -> str:
    return (
        f"{' and '.join(stopped)} {'were' if done else 'will be'} stopped and left stopped: "
        f"start again with "
        f"`systemctl start {' '.join(stopped)}` (on the runtime's default storage), or run "
        "`direct-lvm apply CONFIG` to make the storage again"
    )


def text_lines(spec: Spec, result: ResetResult) -> list[str]:
    """What `direct-lvm reset` prints (stdout)."""
    rp, p = result.reset, result.reset.plan
    out = [f"# {fact}" for fact in p.facts] + [f"# warning: {n}" for n in p.notes]
    if p.empty:
        out.append(f"# nothing to do: nothing direct-lvm made for {spec.ref} is left")
    elif not result.applied:
        out.append(f"# {len(p.steps)} step(s) to reset {spec.ref} (runtime {spec.runtime}):")
        for k, step in enumerate(p.steps, 1):
            out += ["", f"# {k}. {step.reason}", step.shell().rstrip("\n")]
        out += ["", "# nothing changed: run again with --yes to do it"]
    else:
        out.append(
            f"reset {spec.ref}: {len(p.steps)} step(s) done and verified in {result.seconds:.1f} s"
        )
        out += [f"  removed {path}" for path in rp.removed_files]
        out += [f"  blank: {dev}" for dev in rp.pvs]
        out += [f"  moved aside (kept): {dest}" for dest in rp.moved]
    for kept in rp.kept:
        out.append(f"kept: {kept} (docker's earlier storage; reset never touches it)")
    if rp.stopped:
        out.append(restart_hint(rp.stopped, result.applied))
    return out


def to_json(spec: Spec, result: ResetResult) -> dict[str, Any]:
    from .spec import to_mapping

    return {
        "format": 1,
        "config": to_mapping(spec),
        **result.reset.to_json(),
        "applied": result.applied,
        "verified": list(result.verified),
    }
