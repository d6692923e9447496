"""docker-overlay2: Docker >= 25 with overlay2 on a dedicated thick LV with XFS
(ftype=1), mounted at /var/lib/docker by var-lib-docker.mount, which docker requires
(RequiresMountsFor= in our drop-in). The LV, its mount and growth are `_lvroot`'s; this
module adds docker's side: the files, the daemon.json refusals, the restart, and
`docker info` after it."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import VerifyError
from ..model import Spec
from ..observed import Observed, RuntimeState
from ..probe import VG, LvmState, Mount
from ..render import render
from ..steps import PlanBuilder, Step
from ..units import format_size, parse_size
from ._docker import (
    DAEMON_JSON,
    DOCKER_DROPIN,
    DOCKER_HOLD_UNITS,
    DOCKER_ROOT,
    DOCKER_UNIT,
    DOCKER_UNITS,
    check_daemon_json,
    docker_containers,
    docker_info_problems,
    probe_docker,
    require_docker,
    require_exec_start,
    strip_storage_flags,
)
from ._lvroot import (
    WANTS_DIR,
    mount_unit_name,
    plan_mount,
    plan_plugin_lv,
    probe_lv,
    probe_root_dir,
    refuse_other_mount,
    reset_unmount,
    root_is_ours,
    root_problems,
    take_over,
)
from ._systemd import RestartMode, converge_service, daemon_reload
from .base import PlanInput, Plugin, ResetState, VerifyInput, read_file, write_changed
from .table import Runtime

MOUNT_UNIT = mount_unit_name(DOCKER_ROOT)  # var-lib-docker.mount
MOUNT_UNIT_PATH = f"/etc/systemd/system/{MOUNT_UNIT}"
MOUNT_WANTS = f"{WANTS_DIR}/{MOUNT_UNIT}"  # enabled


@dataclass(frozen=True)
class Overlay2:
    """docker-overlay2: the dedicated LV and an optional per-container size limit."""

    lv: str = "docker"
    container_size: int | None = None  # bytes; None: no limit, no project quotas


def options(spec: Spec) -> Overlay2:
    """The `overlay2:` section of a docker-overlay2 spec."""
    opts = spec.options
    return opts if isinstance(opts, Overlay2) else Overlay2()


def overlay2_args(spec: Spec) -> list[str]:
    args = ["--storage-driver=overlay2"]
    size = options(spec).container_size
    if size is not None:
        args.append(f"--storage-opt=overlay2.size={size}")
    return args


def mount_options(spec: Spec) -> str:
    return "defaults,prjquota" if options(spec).container_size is not None else "defaults"


class DockerOverlay2(Plugin):
    name = Runtime.DOCKER_OVERLAY2
    section = "overlay2"
    thin = False
    root = DOCKER_ROOT
    default_data_percent = 100  # one LV, no pool to autoextend: the whole VG
    units = DOCKER_UNITS
    hold_units = DOCKER_HOLD_UNITS
    service_unit = DOCKER_UNIT
    order_unit = "docker"

    def parse_section(self, raw: Mapping[str, Any]) -> object:
        size = raw.get("container_size")
        return Overlay2(lv=raw["lv"], container_size=parse_size(size) if size else None)

    def section_mapping(self, spec: Spec) -> dict[str, Any]:
        o = options(spec)
        out: dict[str, Any] = {"lv": o.lv}
        if o.container_size is not None:
            out["container_size"] = format_size(o.container_size)
        return {"overlay2": out}

    def lv_field(self) -> tuple[str, ...]:
        return ("overlay2", "lv")

    def probe(self, spec: Spec, *, restart: RestartMode) -> RuntimeState:
        root, foreign = probe_root_dir(spec.lv_path, DOCKER_ROOT)
        docker = probe_docker(service_state=True)
        return RuntimeState(
            service=docker, foreign=foreign, config=read_file(DAEMON_JSON), root=root
        )

    def probe_lv(self, spec: Spec, lvm: LvmState, state: RuntimeState) -> RuntimeState:
        assert state.root is not None
        lv_state = probe_lv(state.root, lvm, spec.vg, spec.lv, spec.lv_path, DOCKER_ROOT)
        return replace(state, root=lv_state)

    def check(self, spec: Spec, state: RuntimeState) -> None:
        require_exec_start(require_docker(self.name, state.service))

    def files(self, spec: Spec, state: RuntimeState) -> dict[str, str]:
        o = options(spec)
        out = {
            MOUNT_UNIT_PATH: render("var-lib-docker.mount.j2", vg=spec.vg, lv=o.lv,
                                    what=spec.lv_path, options=mount_options(spec)),
        }  # fmt: skip
        exec_start = state.service.exec_start if state.service is not None else None
        if exec_start:
            out[DOCKER_DROPIN] = render(
                "docker-overlay2.conf.j2",
                vg=spec.vg,
                lv=o.lv,
                exec_start=strip_storage_flags(exec_start),
                args=overlay2_args(spec),
            )
        return out

    def plan_lv(
        self, b: PlanBuilder, spec: Spec, observed: Observed, vg: VG | None, vg_bytes: int
    ) -> bool:
        return plan_plugin_lv(self, b, spec, observed, vg, vg_bytes)

    def plan(self, b: PlanBuilder, p: PlanInput) -> None:
        spec, observed, files, restart, grow_fs = p.spec, p.observed, p.files, p.restart, p.grow_fs
        state = observed.runtime
        docker = state.service
        check_daemon_json(state.config, ("data-root", "graph"))
        on_lv = refuse_other_mount(state.root, DOCKER_ROOT, spec.lv_path, self.name)
        stopped = False
        if not on_lv and state.foreign:
            stopped = take_over(b, observed, docker, self.units, DOCKER_ROOT, "docker", spec.ref)
        changed = write_changed(b, observed, files, "docker's storage on its own LV")
        daemon_reload(b, bool(changed), docker, "systemd must read the new units")
        stopped = plan_mount(
            b,
            root=DOCKER_ROOT,
            root_state=state.root,
            on_lv=on_lv,
            lv_path=spec.lv_path,
            mount_changed=MOUNT_UNIT_PATH in changed,
            grow_fs=grow_fs,
            service=docker,
            units=self.units,
            runtime_label="docker",
            stopped=stopped,
        )
        flags = overlay2_args(spec)
        has_flags = docker is not None and all(f in docker.cmdline for f in flags)
        moved = stopped or not on_lv
        converge_service(
            b,
            docker,
            restart,
            name="docker",
            changed=bool(changed) or moved,
            boot_changed=DOCKER_DROPIN in changed or moved,
            healthy=has_flags,
            stopped=stopped,
            why_changed="docker must start on its LV with overlay2",
            why_unhealthy=f"the running dockerd lacks {' '.join(flags)}",
            # never a blocking start from cloud-init: docker is ordered after it
            why_boot="the running dockerd must move to its LV (restarted after boot)",
            why_start_after_stop="docker was running; it starts again on its LV (after boot)",
        )

    def verify(self, v: VerifyInput) -> tuple[str, ...]:
        spec, lvm, restarted, probed = v.spec, v.lvm, v.restarted, v.probed
        ref = spec.ref
        if lvm.lv(spec.vg, spec.lv) is None or lvm.vg(spec.vg) is None:
            raise VerifyError(f"{ref} does not exist after apply", "see the log above")
        problems = root_problems(
            lvm,
            spec.vg,
            spec.lv,
            spec.lv_path,
            DOCKER_ROOT,
            quotas=options(spec).container_size is not None,
            probed=probed,
        )

        def root_dir(info: dict[str, Any]) -> list[str]:
            if info.get("DockerRootDir") != DOCKER_ROOT:
                return [f"Docker Root Dir {info.get('DockerRootDir')!r}, expected {DOCKER_ROOT!r}"]
            return []

        if restarted and not problems:
            problems.extend(docker_info_problems("overlay2", root_dir))
        if problems:
            raise VerifyError(
                f"{ref} does not match the config: " + "; ".join(problems), "see the log above"
            )
        checks = [f"{ref}: plain LV, tagged", f"{DOCKER_ROOT}: xfs on {spec.lv_path}"]
        if restarted:
            checks.append(f"docker: overlay2 in {DOCKER_ROOT}")
        return tuple(checks)

    def managed_paths(self, spec: Spec) -> tuple[str, ...]:
        return (DOCKER_DROPIN, MOUNT_UNIT_PATH)

    def reset_probe(
        self, spec: Spec, active: tuple[str, ...], mounts: Sequence[Mount]
    ) -> ResetState:
        return ResetState(
            containers=docker_containers(DOCKER_UNIT in active),
            root_ours=root_is_ours(mounts, DOCKER_ROOT, spec.lv_path),
            mount_enabled=os.path.lexists(MOUNT_WANTS),
        )

    def reset_unmount(self, spec: Spec, state: ResetState) -> list[Step]:
        return reset_unmount(DOCKER_ROOT, spec.lv_path, state.root_ours, state.mount_enabled)


PLUGIN = DockerOverlay2()
