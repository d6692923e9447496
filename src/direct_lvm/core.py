"""The engine both adapters (CLI and cloud-init module) call: probe -> plan -> apply ->
re-probe -> verify, and status. Commands go through run.py, files through render.py."""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from . import runtimes
from ._lock import LOCK_PATH as LOCK_PATH
from ._lock import exclusive as exclusive
from ._record import Record, record
from .configfile import read_config_if_present
from .discover import PV_MAKERS, find_devices, missed_signatures
from .errors import CommandError, DirectLvmError
from .model import Spec
from .observed import RuntimeState
from .plan import DEVICE_RECORD, Observed, Plan, Step, device_record, extension_room, plan
from .pool import PROFILE_DIR as PROFILE_DIR
from .pool import profile_files, profile_policy
from .pool import profile_path as profile_path
from .probe import Block, LvmState, probe_block, probe_lvm, probe_mounts
from .render import answered
from .run import claim_early, discard_early, lvm_shell, run
from .runtimes._docker import DOCKER_HOLD_UNITS, backups
from .runtimes._systemd import RestartMode
from .runtimes.base import VerifyInput
from .runtimes.base import read_file as read_file
from .spec import CONFIG_KEY, read_mapping
from .spec import from_mapping as spec_from_mapping
from .steps import FILE_MODE, Action, Kind
from .units import dm_name, human

# Imported where used, not here: status (its dataclasses), the plain-LV runtimes' shared
# module and PyYAML's lenient read serve status, a plain-LV runtime or a failure, and a
# converged run of a thin-pool runtime needs none of them (issue 13: imports on the hot
# path). `typing` is for the type checker only (mypy reads TYPE_CHECKING as True).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .status import PoolStatus, PvStatus, VolumeStatus

log = logging.getLogger("direct_lvm")

# Called after each step that ran, with its number (from 1) and the step. Production
# passes none; the crash-convergence tests pass one through the CLI (cli.crash_hook).
AfterStep = Callable[[int, Step], None]


def desired_files(spec: Spec, state: RuntimeState | None = None) -> dict[str, str]:
    """Every file the storage needs, by path: the thin pool's LVM profile (for a runtime
    on the pool), then the runtime's own (its plugin renders them from `state`)."""
    rt = runtimes.get(spec.runtime)
    files = profile_files(spec) if rt.thin else {}
    files.update(rt.files(spec, state or RuntimeState()))
    return files


def observe(
    spec: Spec, *, restart: RestartMode = RestartMode.NOW, wait: bool = True
) -> tuple[Observed, dict[str, str]]:
    """Probe what the plan needs: the runtime (its plugin's probe; a runtime that is not
    installed is refused here, before any disk is looked at), the devices (only those
    not yet ours), one lvm call, and the managed files."""
    rt = runtimes.get(spec.runtime)
    state = rt.probe(spec, restart=restart)
    rt.check(spec, state)
    # the files, if the render record holds them all; else jinja2's import starts now,
    # beside find_devices' commands (render.answered)
    files = answered(lambda: desired_files(spec, state))
    found = find_devices(spec, wait=wait)
    with_lv = rt.probe_lv(spec, found.lvm, state)
    if files is None or with_lv is not state:  # a plain LV's files may name the LV
        files = desired_files(spec, with_lv)
    state = with_lv
    observed = Observed(
        lvm=found.lvm,
        devices=found.new,
        files={p: read_file(p) for p in files},
        runtime=state,
        timestamp=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        resolved=found.resolved,
        choices=found.choices,
        device_record=read_file(DEVICE_RECORD),
    )
    return observed, files


def seed_record(specs: Iterable[Spec]) -> int:
    """image-setup on the live system: the files a first run of each layout renders,
    rendered now into the render record (render.RECORD, where apply and the boot path
    look first), so that a first boot of the baked image with one of these layouts
    imports no jinja2 (~0.4 s of a first apply under TCG, issue 13). The record's keys
    name this Python's jinja2 and the runtime's unit as found now: an image changed
    after the bake only renders afresh. Reads only. Returns how many files. A layout
    whose runtime refuses what it finds (a config it would not take over) is skipped:
    the record is a cache, and the bake must not fail for a runtime it does not use."""
    from .render import remember

    remember()
    count = 0
    for spec in specs:
        rt = runtimes.get(spec.runtime)
        try:
            count += len(desired_files(spec, rt.probe(spec, restart=RestartMode.NEVER)))
        except DirectLvmError as e:
            log.info("not in the render record: %s (%s)", spec.runtime, e.message.splitlines()[0])
    return count


def make_plan(
    spec: Spec, *, restart: RestartMode = RestartMode.NOW, wait: bool = True
) -> tuple[Plan, Observed]:
    """Plan, and when the runtime has anything to do, pass its full version gate first:
    a refusal comes before any disk is touched. A converged boot, or one that only
    grows the pool or LV (LVM steps alone), skips it (dpkg-query or `dockerd
    --version`: a process)."""
    observed, files = observe(spec, restart=restart, wait=wait)
    the_plan = plan(spec, observed, files, restart=restart)
    if the_plan.runtime_steps:
        runtimes.get(spec.runtime).check_changes(spec, observed.runtime)
    return the_plan, observed


def _new_temp(directory: str, prefix: str) -> tuple[int, str]:
    """tempfile.mkstemp's contract (a file that did not exist, opened O_EXCL, mode 0600)
    without importing tempfile: with shutil, random and the compressors it was ~5 ms
    (host CPU) of every converged run, which writes its records through here. O_EXCL
    makes the name's uniqueness safe (no symlink followed, no file reused); pid, clock
    and a counter only make a clash unlikely, and a clash takes the next name. Not
    os.urandom: in early boot it can block until the kernel's pool is initialized."""
    for n in range(1000):
        tmp = os.path.join(directory, f"{prefix}{os.getpid()}.{time.monotonic_ns()}.{n}")
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name", f"{directory}/{prefix}*")


def write_file(path: str, content: str, mode: int = FILE_MODE) -> None:
    """Atomic write: temp file in the same directory, fsync, rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temp(str(target.parent), f".{target.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def execute(steps: tuple[Step, ...], *, after_step: AfterStep | None = None) -> None:
    for k, step in enumerate(steps, 1):
        log.info("step %d/%d: %s", k, len(steps), step.reason)
        if step.action is Action.RUN:
            run(step.argv, changes=True)
        else:
            log.info("+ write %s (%d bytes)", step.path, len(step.content))
            log.debug("%s", step.shell())
            write_file(step.path, step.content)
        if after_step is not None:
            after_step(k, step)


@record
class ApplyResult(Record):
    plan: Plan
    verified: tuple[str, ...]
    seconds: float


def apply(
    spec: Spec,
    *,
    restart: RestartMode = RestartMode.NOW,
    dry_run: bool = False,
    after_step: AfterStep | None = None,
) -> ApplyResult:
    if dry_run:
        discard_early()  # (started for apply only: a dry run holds no lock)
        return _apply(spec, restart=restart, dry_run=True)
    with exclusive() as generation:
        # the report started before the imports (early.py) is this run's first probe only
        # if no other run held the lock since it started
        claim_early(generation)
        try:
            result = _apply(spec, restart=restart, dry_run=False, after_step=after_step)
        except DirectLvmError as e:
            record_apply(spec.ref, success=False, error=e.message)
            raise
        finally:
            discard_early()  # not taken (a failure before the probe): stopped here
        record_apply(spec.ref, success=True, changed=not result.plan.empty)
        return result


# When the last apply (CLI or boot) ended and how: for monitoring (status --format
# prometheus). Written atomically; never read by apply itself.
LAST_APPLY = "/var/lib/direct-lvm/last-apply.json"


def record_apply(
    ref: str,
    *,
    success: bool,
    changed: bool | None = None,
    error: str | None = None,
    path: str = LAST_APPLY,
) -> None:
    record = {"timestamp": round(time.time(), 3), "success": success, "ref": ref,
              "changed": changed, "error": error}  # fmt: skip
    try:
        write_file(path, json.dumps(record) + "\n")
    except OSError as e:  # a read-only /var must not fail the apply itself
        log.info("could not record the apply in %s: %s", path, e.strerror)


def last_apply(path: str = LAST_APPLY) -> dict[str, Any] | None:
    """The record of the last apply, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(read_file(path) or "null")
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("timestamp"), (int, float)):
        return None
    return data


def _apply(
    spec: Spec, *, restart: RestartMode, dry_run: bool, after_step: AfterStep | None = None
) -> ApplyResult:
    start = time.monotonic()
    the_plan, observed = make_plan(spec, restart=restart)
    if dry_run or the_plan.empty:
        # converged: what was just probed is what verify needs (one lvm call in all, and
        # for a plain LV one findmnt)
        checks = (
            verify(spec, observed.lvm, restarted=False, probed=observed.runtime)
            if the_plan.empty
            else ()
        )
        return ApplyResult(the_plan, checks, time.monotonic() - start)
    # the steps' lvm commands that cannot ask a question, and the verifying report, in
    # one lvm process (run.lvm_shell)
    with lvm_shell(PROFILE_DIR):
        try:
            execute(the_plan.steps, after_step=after_step)
        except CommandError as e:
            if e.argv[:1] and e.argv[0] in PV_MAKERS:
                missed_signatures(spec, observed.lvm, observed.devices)  # raises if it was that
            raise
        restarted = bool(the_plan.of_kind(Kind.RESTART))
        lvm_after = probe_lvm()
    checks = verify(spec, lvm_after, restarted=restarted)
    for step in the_plan.of_kind(Kind.MOVE_ASIDE):
        log.info("docker's earlier storage was kept at %s", step.kept_at)
    return ApplyResult(the_plan, checks, time.monotonic() - start)


def verify(
    spec: Spec, lvm: LvmState, *, restarted: bool, probed: RuntimeState | None = None
) -> tuple[str, ...]:
    """Compare the re-probed system with the spec (the runtime's plugin knows what to
    compare; with `restarted`, the runtime's own view too); VerifyError on a difference."""
    return runtimes.get(spec.runtime).verify(VerifyInput(spec, lvm, restarted, probed))


# ------------------------------------------------------------------ status


# With autoextend off nothing grows the pool: warn from this usage on (the schema's
# default autoextend threshold).
UNMANAGED_WARN_PERCENT = 80


def pool_warnings(p: PoolStatus) -> list[str]:
    """The pool is past its threshold and nothing can extend it: data% or metadata% at or
    above the autoextend threshold (80 when autoextend is off) while the VG has no room
    for one more autoextend step (or autoextend is off)."""
    threshold = p.autoextend_threshold or UNMANAGED_WARN_PERCENT
    if p.extensions_left:
        return []
    out = []
    for what, used in (("data", p.data_percent), ("metadata", p.metadata_percent)):
        if used is not None and used >= threshold:
            why = (
                "autoextend is off"
                if p.autoextend_percent is None
                else f"the volume group has {human(p.vg_free)} free, not enough for "
                f"one {p.autoextend_percent}% autoextend step"
            )
            out.append(
                f"{p.vg}/{p.pool} {what} is {used:g}% full (threshold "
                f"{threshold}%) and {why}: add a device to devices or grow one, then run "
                "direct-lvm apply; or free space in the pool"
            )
    return out


def pv_identity(lvm: LvmState, vg: str, block: Block) -> tuple[PvStatus, ...]:
    """Each PV of vg: size, serial, WWN, by-id links, and which devices entry chose it
    and why (from the record apply keeps)."""
    from .status import PvStatus

    tree, links = block
    record = device_record(read_file(DEVICE_RECORD))
    out = []
    for pv in lvm.pvs_of(vg):
        dev = tree.get(pv.name)
        rec = record.get(pv.name, {})
        out.append(
            PvStatus(
                device=pv.name,
                size=pv.dev_size,
                serial=dev.serial if dev else rec.get("serial", ""),
                wwn=dev.wwn if dev else rec.get("wwn", ""),
                # the disk's own names first; lvm-pv-uuid-... links last
                by_id=tuple(sorted(links.get(pv.name, ()), key=lambda x: "/lvm-pv-" in x)),
                entry=rec.get("entry"),
                reason=rec.get("reason"),
            )
        )
    return tuple(out)


def volumes() -> list[VolumeStatus]:
    """The plain LVs of the runtimes that use one, and where each is mounted (status)."""
    from .runtimes._lvroot import volumes as lv_volumes

    roots = [r for name in runtimes.Runtime if (r := runtimes.get(name).root)]
    return lv_volumes(probe_lvm(), probe_mounts(), roots)


def status(lvm: LvmState | None = None, block: Block | None = None) -> list[PoolStatus]:
    """One entry per thin pool in a VG direct-lvm owns, with its PVs' identity and the
    backups of docker's earlier storage that a takeover kept, and warnings when it is
    filling up with no room left to extend."""
    from .status import PoolStatus

    kept = tuple(backups())
    if lvm is None:
        lvm = probe_lvm()
        block = block or probe_block()
    out = []
    for vg in lvm.vgs:
        if not vg.owned:
            continue
        for lv in lvm.lvs:
            if lv.vg != vg.name or not lv.is_thin_pool:
                continue
            policy = profile_policy(lv.profile)
            percent = policy[1] if policy else None
            room = extension_room(vg.free, lv.size, vg.extent_size, percent) if percent else None
            entry = PoolStatus(
                vg=vg.name,
                pool=lv.name,
                dm_path=f"/dev/mapper/{dm_name(vg.name, lv.name)}",
                size=lv.size,
                metadata_size=lv.metadata_size,
                data_percent=lv.data_percent,
                metadata_percent=lv.metadata_percent,
                chunk_size=lv.chunk_size,
                zero=lv.zero,
                when_full=lv.when_full,
                profile=lv.profile,
                monitor=lv.monitor,
                attr=lv.attr,
                vg_free=vg.free,
                autoextend_threshold=policy[0] if policy else None,
                autoextend_percent=percent,
                extensions_left=room,
                lv_uuid=lv.uuid,
                docker_backups=kept,
            )
            out.append(replace(entry, warnings=tuple(pool_warnings(entry))))
    return [replace(e, pvs=pv_identity(lvm, e.vg, block or ({}, {}))) for e in out]


# ------------------------------------------------------------------ boot (cloud-init)


def runtime_units(mapping: object) -> tuple[str, ...]:
    """The units to hold back when the config for `mapping` failed: the configured
    runtime's, read leniently (the config may be the thing that is broken); the default
    runtime's (docker's) when the runtime cannot be told."""
    raw = mapping.get("runtime") if isinstance(mapping, dict) else None
    try:
        return runtimes.get(raw).hold_units
    except (KeyError, TypeError, ValueError):
        return DOCKER_UNITS


DOCKER_UNITS = DOCKER_HOLD_UNITS


def _lenient_yaml(text: str) -> object:
    """The direct_lvm mapping of a config file that failed validation, if YAML can read
    it at all (only to tell which runtime to hold back)."""
    import yaml  # only after a failure

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return doc.get(CONFIG_KEY, doc) if isinstance(doc, dict) else None


def block_runtime_for_this_boot(units: tuple[str, ...] = DOCKER_UNITS) -> None:
    """After a failure at boot: keep the runtime from starting on storage other than ours
    (masked in /run only, so the next boot tries again)."""
    run(["systemctl", "mask", "--runtime", *units], changes=True, check=False)
    names = " ".join(units)
    log.error(
        "direct-lvm: %s masked for this boot so the runtime does not start on other "
        "storage; after fixing the cause, run `direct-lvm apply` with the same config, or "
        "reboot (systemctl unmask --runtime %s lifts the mask)",
        names,
        names,
    )


BOOT_CONFIG_FILE = "/etc/direct-lvm/config.yaml"


def boot_config(cloud_config: dict[str, Any], path: str = BOOT_CONFIG_FILE) -> Any:
    """The direct_lvm mapping for this boot: the cloud-config key, else the file (a
    cloud-config or the bare mapping), else None (nothing configured)."""
    if CONFIG_KEY in cloud_config:
        if Path(path).exists():
            log.info(
                "direct-lvm: using the direct_lvm key of the cloud-config; %s is ignored", path
            )
        return cloud_config[CONFIG_KEY]
    text: str | None = None
    try:
        # size-capped, UTF-8, no duplicate keys: every problem is a ConfigError
        text = read_config_if_present(path)
        if text is None:
            return None
        return read_mapping(text, path)  # from the render record when it holds this text
    except DirectLvmError:
        block_runtime_for_this_boot(runtime_units(_lenient_yaml(text or "")))
        raise


def boot(mapping: dict[str, Any], who: str = "direct-lvm") -> ApplyResult:
    """The boot entry (cloud-init module and direct-lvm.service, through bootpath):
    converge on every boot without starting the runtime (it is ordered after us and finds
    its drop-in in place). A converged boot changes nothing and says so in one line,
    prefixed with `who`. Failures raise, after block_runtime_for_this_boot."""
    try:
        the_spec = spec_from_mapping(mapping)
        result = apply(the_spec, restart=RestartMode.BOOT)
    except DirectLvmError:
        block_runtime_for_this_boot(runtime_units(mapping))
        raise
    ref = the_spec.ref
    for note in result.plan.notes:
        log.warning("%s: %s", who, note)
    if result.plan.empty:
        log.info("%s: %s matches the config; nothing changed (%.1f s)", who, ref, result.seconds)
    else:
        log.info(
            "%s: %s: %d step(s) applied and verified in %.1f s",
            who,
            ref,
            len(result.plan.steps),
            result.seconds,
        )
    return result
