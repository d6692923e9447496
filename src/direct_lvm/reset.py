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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import OWNER_TAG, runtimes
from .core import BOOT_CONFIG_FILE, LAST_APPLY, exclusive, execute, read_file
from .errors import RefusedError, VerifyError
from .model import Spec
from .plan import DEVICE_RECORD, Plan, Step, device_record
from .probe import LV, LvmState, Mount, parse_wipefs, probe_lvm, probe_mounts
from .run import run
from .runtimes._docker import DOCKER_ROOT, backups
from .runtimes._systemd import find_unit
from .runtimes.base import ResetState
from .steps import Kind, run_step, write_step

log = logging.getLogger("direct_lvm")

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
    config_toml: str | None = None  # an edited file (containerd's config.toml) afterwards
    edited: str = ""  # the path of that file

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
    a file the runtime edits, such as containerd's config.toml, are edited, not simply
    removed)."""
    return (*runtimes.get(spec.runtime).managed_paths(spec), DEVICE_RECORD, LAST_APPLY)


def written_for(text: str | None, spec: Spec) -> bool:
    """The file's first line says direct-lvm wrote it for this config's pool or LV."""
    first = (text or "").split("\n", 1)[0]
    return first.startswith(MARK) and f" {spec.ref};" in first


def runtime_units(spec: Spec) -> tuple[str, ...]:
    return runtimes.get(spec.runtime).units


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
        steps.append(run_step(f"{kind} {lv.vg}/{lv.name} carries the {OWNER_TAG} tag",
                              "lvremove", "--yes", f"{lv.vg}/{lv.name}",
                              kind=Kind.LVM))  # fmt: skip
    steps.append(run_step(f"volume group {spec.vg!r} carries the {OWNER_TAG} tag",
                          "vgremove", "--yes", spec.vg, kind=Kind.LVM))  # fmt: skip
    pvs = tuple(p.name for p in lvm.pvs_of(spec.vg))
    if pvs:
        steps.append(run_step(f"the physical volumes of {spec.vg!r}", "pvremove", "--yes",
                              *pvs, kind=Kind.LVM))  # fmt: skip
        steps.append(run_step("the disks must be blank, as if new: no signature left",
                              "wipefs", "--all", *pvs, kind=Kind.WIPE))  # fmt: skip
        facts.append(
            f"volume group {spec.vg!r} on {', '.join(pvs)}: "
            + ", ".join(f"{lv.vg}/{lv.name}" for lv in lvs)
            + " will be removed"
        )
    return steps, pvs


def _file_steps(
    spec: Spec, observed: ResetObserved, facts: list[str]
) -> tuple[list[Step], tuple[str, ...], str | None, str]:
    rt = runtimes.get(spec.runtime)
    steps: list[Step] = []
    removed: list[str] = []
    edited_text: str | None = None
    edited = ""
    for path in managed_paths(spec):
        text = observed.files.get(path)
        if text is None:
            continue
        edit = rt.reset_edit(path, text, spec=spec, files=observed.files)
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
                    write_step(
                        f"the device record keeps other VGs' devices only ({spec.vg!r}'s go)",
                        path,
                        json.dumps(rest, indent=2, sort_keys=True) + "\n",
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
        elif edit is not None:  # a file the runtime edits (containerd's config.toml)
            if edit.keep:
                if edit.reason:
                    facts.append(edit.reason)
                continue
            if edit.content is not None:
                edited_text, edited = edit.content, path
                steps.append(write_step(edit.reason, path, edit.content))
                continue
        elif not written_for(text, spec):
            facts.append(f"{path} was not written by direct-lvm for {spec.ref}; left as it is")
            continue
        steps.append(run_step(f"direct-lvm wrote {path} for {spec.ref}", "rm", "-f", "--", path,
                              kind=Kind.REMOVE))  # fmt: skip
        removed.append(path)
    return steps, tuple(removed), edited_text, edited


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
    rt = runtimes.get(spec.runtime)
    file_steps, removed, config_toml, edited = _file_steps(spec, observed, facts)

    steps: list[Step] = []
    stopped = tuple(u for u in runtime_units(spec) if u in observed.active_units)
    if stopped:
        steps.append(
            run_step(
                "the runtime must stop before its storage goes (it is left stopped)",
                "systemctl",
                "stop",
                *stopped,
                kind=Kind.STOP,
            )
        )
    steps += rt.reset_unmount(
        spec, ResetState(root_ours=observed.docker_root_ours, mount_enabled=observed.mount_enabled)
    )
    moved: tuple[str, ...] = ()
    if observed.pool_state and lv_steps:
        dest = rt.reset_backup(observed.pool_state, observed.timestamp)
        steps.append(run_step(
            f"{observed.pool_state} describes the devices in {spec.ref}, which goes; moved "
            "aside (kept, never deleted) so the runtime starts clean",
            "mv", "--no-target-directory", observed.pool_state, dest, kind=Kind.MOVE_ASIDE,
        ))  # fmt: skip
        moved = (dest,)
    if observed.snap_devices and lv_steps:
        steps.append(run_step(
            "containerd leaves its snapshot devices active on the pool; lvremove needs "
            "them gone (their data goes with the pool)",
            "dmsetup", "remove", "--retry", *observed.snap_devices, kind=Kind.LVM,
        ))  # fmt: skip
    steps += lv_steps
    steps += file_steps
    if any(p.startswith("/etc/systemd/") for p in removed):
        steps.append(
            run_step(
                "systemd must forget the removed units and drop-ins",
                "systemctl",
                "daemon-reload",
                kind=Kind.RELOAD,
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
        edited,
    )


# ------------------------------------------------------------------ probe, run, verify


def _active(units: tuple[str, ...]) -> tuple[str, ...]:
    r = run(["systemctl", "is-active", *units], check=False)
    states = r.stdout.split()
    return tuple(u for u, s in zip(units, states) if s in ("active", "activating", "reloading"))


def container_mounts(mounts: Sequence[Mount]) -> tuple[str, ...]:
    """Container root filesystems mounted now (docker's overlay2 and devicemapper, a
    containerd task's rootfs)."""
    return tuple(m.target for m in mounts if any(p.match(m.target) for p in CONTAINER_MOUNTS))


def observe(spec: Spec) -> ResetObserved:
    lvm = probe_lvm()
    rt = runtimes.get(spec.runtime)
    units = rt.units
    installed = any(find_unit(u) for u in units)
    active = _active(units) if installed else ()
    mounts = probe_mounts()  # one findmnt call
    state = rt.reset_probe(spec, active, mounts)
    return ResetObserved(
        lvm=lvm,
        files={p: read_file(p) for p in managed_paths(spec)},
        active_units=active,
        containers=state.containers,
        container_mounts=container_mounts(mounts),
        snap_devices=state.snap_devices,
        docker_root_ours=state.root_ours,
        mount_enabled=state.mount_enabled,
        pool_state=state.pool_state,
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
    if rp.config_toml is not None and read_file(rp.edited) != rp.config_toml:
        problems.append(f"{rp.edited} is not what reset wrote")
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
