"""The interface every runtime implements: `Plugin`. One instance per runtime module,
`PLUGIN = MyRuntime()`, listed in runtimes/__init__.py's TABLE.

Note to the author of a new runtime (containerd-overlayfs, podman): start from the
closest existing module (docker_overlay2.py for a dedicated XFS LV at a path,
containerd_devmapper.py for the thin pool) and reuse the shared pieces: `_systemd` for
the unit (probe, drop-in reload, restart modes), `_lvroot` for the LV at your root
(create, mkfs, mount unit, grow online, move-aside of what was there, the refusals).
What the engine does around you, in order (core.py):

    state = plugin.probe(spec, restart=...)        # reads only; one state object
    plugin.check(spec, state)                      # cheap version gate, before any disk
    files = plugin.files(spec, state)              # + the LVM profile when plugin.thin
    observed = Observed(..., runtime=state)
    plan.plan(...)  ->  LVM steps (thin pool, or plugin.plan_lv for a plain LV), then
                       plugin.plan(b, PlanInput(spec, observed, files, restart, grow_fs))
    plugin.check_changes(spec, state)              # only when the plan has steps
    execute(steps); plugin.verify(VerifyInput(spec, lvm, restarted))

Rules for every member: pure planning (no I/O) in `plan`; reads only in `probe`; every
command through run.py (argv lists); every file through render.py; every refusal a
ConfigError/RefusedError with the value and the fix; never delete a user's data (move
it aside with `_lvroot.move_aside`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path

from .._record import Record, record

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any, ClassVar

    from ..model import Spec
    from ..observed import Observed, RuntimeState
    from ..probe import VG, LvmState, Mount
    from ..steps import PlanBuilder, Step
    from ._systemd import RestartMode


@record
class ResetState(Record):
    """What reset must know about the runtime beyond LVM and the files."""

    containers: tuple[str, ...] = ()  # containers that exist (ids, or "<ns>/<id>")
    pool_state: str = ""  # the runtime's own metadata about the pool's devices (a dir)
    snap_devices: tuple[str, ...] = ()  # thin devices the runtime left on the pool
    root_ours: bool = False  # plain-LV runtimes: our LV is mounted at the root
    mount_enabled: bool = False  # plain-LV runtimes: the root's mount unit is enabled


@record
class ResetEdit(Record):
    """How reset treats a file the runtime edits rather than owns (containerd's
    config.toml), or owns by another rule (docker-devicemapper's static drop-in): keep
    it as it is (`reason`, if any, says why), write `content`, or (neither) remove it."""

    keep: bool = False
    content: str | None = None
    reason: str = ""


def read_file(path: str) -> str | None:
    """A file's text, None when it does not exist."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        return None


def write_changed(
    b: PlanBuilder, observed: Observed, desired: Mapping[str, str], what: str
) -> set[str]:
    """A write step for each runtime file that is missing or differs (`what` names the
    purpose in the reason). The LVM profile is skipped: plan.py writes it before the
    pool. Returns the paths written."""
    changed = set()
    for path, content in desired.items():
        if path.endswith(".profile"):
            continue  # written before the pool (plan.py)
        current = observed.files.get(path)
        if current != content:
            b.write(f"{'missing' if current is None else 'differs'}: {what}", path, content)
            changed.add(path)
    return changed


@record
class PlanInput(Record):
    """What a runtime's plan reads, all of it data: the config, what probe saw, the
    rendered files (path -> content), how the runtime may be restarted, and whether the
    plain LV grew so that its XFS must follow."""

    spec: Spec
    observed: Observed
    files: Mapping[str, str]
    restart: RestartMode
    grow_fs: bool = False


@record
class VerifyInput(Record):
    """What verify reads: the config, the LVM report after apply, whether the plan
    restarted the runtime and waited, and what probe found when nothing ran since (a
    converged apply), so that verify reads no state again that probe already read."""

    spec: Spec
    lvm: LvmState
    restarted: bool = False
    probed: RuntimeState | None = None


class Plugin(ABC):
    """One container runtime. Class attributes describe it; methods do its part of each
    phase. Members with a body have a default that fits most runtimes."""

    name: ClassVar[str]  # the config's runtime: value, e.g. "docker-overlay2"
    # Its own cloud-config section (e.g. "overlay2"), or None. The section's schema is in
    # schema/direct_lvm.schema.json under properties.<section>; parse_section turns the
    # validated mapping (defaults filled) into the options object spec.options holds.
    section: ClassVar[str | None] = None
    # True: the runtime consumes the thin pool (direct-lvm makes the pool and its LVM
    # autoextend profile). False: a plain (thick) LV with XFS mounted at `root`.
    thin: ClassVar[bool] = True
    # Plain-LV runtimes: the directory their LV is mounted at (e.g. /var/lib/docker).
    root: ClassVar[str | None] = None
    # data_percent when the config leaves it out (None: the schema's default, 80).
    default_data_percent: ClassVar[int | None] = None
    # The runtime's units in the order `systemctl stop` needs them (a socket first, so it
    # does not start the service again): reset stops these.
    units: ClassVar[tuple[str, ...]]
    # The units masked for the rest of a boot that failed, so the runtime does not start
    # on storage other than ours (the same units; the order is the mask's argv).
    hold_units: ClassVar[tuple[str, ...]]
    # The runtime's main unit (e.g. docker.service).
    service_unit: ClassVar[str]
    # The unit name (without .service) image-setup orders after cloud-init; envs
    # renders that drop-in.
    order_unit: ClassVar[str]

    # ------------------------------------------------------------------ config

    def parse_section(self, raw: Mapping[str, Any]) -> object:
        """The runtime's options from its section as validated (defaults filled in).
        Raise ConfigError for what the schema cannot say. Must not do I/O."""
        return None

    def section_mapping(self, spec: Spec) -> dict[str, Any]:
        """{section: {...}} with every default spelled out (render, plan --json); {} for
        a runtime without a section."""
        return {}

    def lv_field(self) -> tuple[str, ...]:
        """Where the config names the LV this runtime's storage is: ("pool",) for the
        thin pool, (section, "lv") for a plain LV."""
        return ("pool",)

    # ------------------------------------------------------------------ probe and gate

    @abstractmethod
    def probe(self, spec: Spec, *, restart: RestartMode) -> RuntimeState:
        """Everything the plan needs about the runtime, in one state object: its unit
        (installed, running, arguments, NeedDaemonReload), its own config's text, what
        its storage directory holds, and for a plain LV the `_lvroot.RootState`. Reads
        only; as few processes as possible (a converged boot runs this every time).
        Must not run anything slow (a daemon's --version) unless nothing cheaper tells."""

    def probe_lv(self, spec: Spec, lvm: LvmState, state: RuntimeState) -> RuntimeState:
        """The second half of probe, once LVM is known (after device discovery): a
        plain-LV runtime adds its LV's signatures, filesystem size and mount unit state
        (`_lvroot.probe_lv`). Default: nothing to add."""
        return state

    @abstractmethod
    def check(self, spec: Spec, state: RuntimeState) -> None:
        """The version gate, before any disk is looked at: raise ConfigError (value and
        fix) when the runtime is not installed or cannot use this layout."""

    def check_changes(self, spec: Spec, state: RuntimeState) -> None:
        """The part of the gate that costs a process (a version lookup), run only when
        the plan has steps (a converged boot skips it). Default: nothing more to check."""
        return None

    def gate(self, spec: Spec, state: RuntimeState) -> None:
        """The whole version gate, pure, on a state that knows the version (what
        check_changes runs after looking the version up). Default: `check`."""
        self.check(spec, state)

    # ------------------------------------------------------------------ plan

    @abstractmethod
    def files(self, spec: Spec, state: RuntimeState) -> dict[str, str]:
        """path -> rendered content of every file the runtime's storage needs (drop-ins,
        mount unit, config fragments), NOT the LVM profile (core adds it for thin
        runtimes). Pure, through render.py."""

    @abstractmethod
    def plan(self, b: PlanBuilder, p: PlanInput) -> None:
        """Append the runtime's steps after the LVM ones: refusals (a conflicting root in
        the runtime's own config, another mount at its root), the move-aside of storage
        that is not ours, the files that differ, daemon-reload, the mount, and the
        restart per `p.restart` (NOW: restart and wait, Kind.RESTART; BOOT: never a
        blocking start from cloud-init; NEVER: no start/stop of the runtime). `p.grow_fs`:
        the plain LV grew and its XFS must follow (xfs_growfs through the mount). Pure:
        everything comes from `p.observed`. A converged system must plan nothing."""

    def plan_lv(
        self, b: PlanBuilder, spec: Spec, observed: Observed, vg: VG | None, vg_bytes: int
    ) -> bool:
        """Plain-LV runtimes: the LV and its XFS (create, mkfs, extend to data_percent of
        `vg` as it will be after growth; vg None: a new VG of vg_bytes). Returns whether
        the XFS must grow (then `plan` gets p.grow_fs). Thin runtimes never get this call;
        plain-LV runtimes use `_lvroot.plan_lv`."""
        raise NotImplementedError(f"runtime {self.name} uses the thin pool")

    # ------------------------------------------------------------------ after apply

    @abstractmethod
    def verify(self, v: VerifyInput) -> tuple[str, ...]:
        """Re-check the storage (pool or LV, mount) after apply, and, when `v.restarted`
        (the plan restarted the runtime and waited), the runtime's own view (docker
        info, ctr plugins ls, podman info). Raise VerifyError naming each difference;
        return the checks that passed, one line each. `v.probed`: what probe found, given
        when nothing ran since (a converged apply), so verify reads no state again that
        probe already read (a plain LV's mount: no second findmnt)."""

    # ------------------------------------------------------------------ reset

    @abstractmethod
    def managed_paths(self, spec: Spec) -> tuple[str, ...]:
        """Every file this runtime may have written for `spec` (reset removes each whose
        first line says direct-lvm wrote it for spec.ref), the LVM profile included for
        thin runtimes."""

    @abstractmethod
    def reset_probe(
        self, spec: Spec, active: tuple[str, ...], mounts: Sequence[Mount]
    ) -> ResetState:
        """Reset's probe (reads only): containers that exist (`active`: the runtime's
        units that run; never start one to ask), the runtime's metadata about the pool,
        leftover devices, and for a plain LV whether it is mounted and enabled. `mounts`:
        what findmnt found (reset reads them once)."""

    def reset_backup(self, pool_state: str, timestamp: str) -> str:
        """Where reset moves the runtime's pool metadata (ResetState.pool_state)."""
        return f"{pool_state}.direct-lvm-reset-{timestamp}"

    def reset_unmount(self, spec: Spec, state: ResetState) -> list[Step]:
        """Plain-LV runtimes: unmount the root and disable its mount unit. Default: none."""
        return []

    def reset_edit(
        self, path: str, text: str, spec: Spec, files: Mapping[str, str | None]
    ) -> ResetEdit | None:
        """A file this runtime edits rather than owns, or owns by another rule than the
        first line naming spec.ref: how reset treats it (`files`: every managed path's
        text). None (the default): an ordinary managed file."""
        return None
