"""docker-devicemapper: Docker <= 24 with the devicemapper storage driver on the thin
pool. A drop-in repeats docker.service's ExecStart with the pool's storage options; an
earlier /var/lib/docker of another driver (or loop-lvm) is moved aside, never deleted."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace

from ..errors import ConfigError
from ..model import Spec
from ..observed import RuntimeState
from ..pool import profile_path, verify_pool
from ..probe import Mount
from ..render import render
from ..steps import PlanBuilder
from ._docker import (
    BACKUP_PREFIX,
    DAEMON_JSON,
    DEVICEMAPPER_DROPIN_MARK,
    DOCKER_DROPIN,
    DOCKER_ENV,
    DOCKER_HOLD_UNITS,
    DOCKER_ROOT,
    DOCKER_UNIT,
    DOCKER_UNITS,
    check_daemon_json,
    devicemapper_dropin,
    docker_containers,
    docker_info_problems,
    foreign_storage,
    probe_docker,
    require_docker,
    require_exec_start,
    with_version,
)
from ._systemd import RestartMode, converge_service, daemon_reload
from .base import PlanInput, Plugin, ResetEdit, ResetState, VerifyInput, read_file, write_changed
from .table import Runtime

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any

RESET_SUFFIX = "-reset"  # docker's state on a removed pool: BACKUP_PREFIX<time>-reset


def dropin_args(spec: Spec) -> list[str]:
    return [
        "--storage-driver=devicemapper",
        f"--storage-opt=dm.thinpooldev={spec.pool_path}",
        "--storage-opt=dm.use_deferred_removal=true",
        "--storage-opt=dm.use_deferred_deletion=true",
    ]


class DockerDevicemapper(Plugin):
    name = Runtime.DOCKER_DEVICEMAPPER
    units = DOCKER_UNITS
    hold_units = DOCKER_HOLD_UNITS
    service_unit = DOCKER_UNIT
    order_unit = "docker"

    def probe(self, spec: Spec, *, restart: RestartMode) -> RuntimeState:
        foreign = foreign_storage()
        # always (one systemctl call): even --no-restart must know whether systemd still
        # has to read a drop-in an interrupted run wrote (NeedDaemonReload)
        docker = probe_docker(service_state=True)
        return RuntimeState(service=docker, foreign=foreign, config=read_file(DAEMON_JSON))

    def gate(self, spec: Spec, state: RuntimeState) -> None:
        docker = require_docker(self.name, state.service, " <= 24")
        if docker.version and docker.version >= (25, 0):
            raise ConfigError(
                f"runtime docker-devicemapper: the installed {docker.version_text!r} has no "
                "devicemapper storage driver (removed in Docker 25.0)",
                "set runtime: docker-overlay2 (overlay2 on a dedicated LV) or "
                "containerd-devmapper, or install Docker <= 24",
            )
        require_exec_start(docker)

    def check(self, spec: Spec, state: RuntimeState) -> None:
        # the version costs a process: only "not installed" here, the rest with changes
        if state.service is None or not state.service.installed:
            self.gate(spec, state)

    def check_changes(self, spec: Spec, state: RuntimeState) -> None:
        if state.service is not None:
            self.gate(spec, replace(state, service=with_version(state.service)))

    def files(self, spec: Spec, state: RuntimeState) -> dict[str, str]:
        docker = state.service
        if docker is None or not docker.exec_start:
            return {}
        # DOCKER_ENV first: a run stopped after it still writes the drop-in and reloads
        return {
            DOCKER_ENV: render(
                "docker-storage.env.j2", vg=spec.vg, pool=spec.pool, args=dropin_args(spec)
            ),
            DOCKER_DROPIN: devicemapper_dropin(docker.exec_start),
        }

    def plan(self, b: PlanBuilder, p: PlanInput) -> None:
        spec, observed, files, restart = p.spec, p.observed, p.files, p.restart
        state = observed.runtime
        docker = state.service
        check_daemon_json(state.config)
        stopped = False
        if state.foreign:
            # here: _lvroot (the plain-LV runtimes' module) is not on a converged path
            from ._lvroot import move_aside

            stopped = move_aside(
                b,
                docker,
                self.units,
                path=DOCKER_ROOT,
                backup=f"{BACKUP_PREFIX}{observed.timestamp}",
                why_stop="docker must stop before its old storage is moved aside",
                why=f"{DOCKER_ROOT} holds storage that is not on the pool "
                f"({', '.join(state.foreign)}); kept as a backup, never deleted",
            )
        written = write_changed(b, observed, files, "docker's storage options")
        changed = bool(written)  # dockerd reads DOCKER_ENV at its next start
        # a drop-in image-setup baked is already loaded: only DOCKER_ENV changes then
        why = (
            "systemd must read the new drop-in (a changed unit file is read only on "
            "daemon-reload; image-setup bakes it so that a first boot needs none)"
        )
        daemon_reload(b, DOCKER_DROPIN in written, docker, why)
        wanted = f"dm.thinpooldev={spec.pool_path}"
        on_pool = docker is not None and any(a.endswith(wanted) for a in docker.cmdline)
        converge_service(
            b,
            docker,
            restart,
            name="docker",
            changed=changed,
            boot_changed=changed,
            healthy=on_pool,
            stopped=stopped,
            why_changed="docker must start with the new storage options",
            why_unhealthy=f"the running dockerd lacks {wanted}",
            # Never start docker from cloud-init (it is ordered after cloud-init: a
            # blocking start deadlocks the boot); it starts by itself and finds its
            # drop-in in place.
            why_boot="the running dockerd must pick up the pool (restarted after boot)",
        )

    def verify(self, v: VerifyInput) -> tuple[str, ...]:
        spec, lvm, restarted = v.spec, v.lvm, v.restarted

        def pool_name(info: dict[str, Any]) -> list[str]:
            status = {k: v for k, v in info.get("DriverStatus") or []}
            if status.get("Pool Name") != spec.pool_dm_name:
                return [f"docker pool {status.get('Pool Name')!r}, expected {spec.pool_dm_name!r}"]
            return []

        def on_docker() -> list[str]:
            return docker_info_problems("devicemapper", pool_name)

        return verify_pool(spec, lvm, on_docker if restarted else None)

    def managed_paths(self, spec: Spec) -> tuple[str, ...]:
        return (profile_path(spec), DOCKER_ENV, DOCKER_DROPIN)

    def reset_edit(
        self, path: str, text: str, spec: Spec, files: Mapping[str, str | None]
    ) -> ResetEdit | None:
        if path != DOCKER_DROPIN or not text.startswith(DEVICEMAPPER_DROPIN_MARK):
            return None  # not our static drop-in: the usual rule (first line names the pool)
        # It names no pool (image-setup bakes it for any config): removed unless the
        # storage options it reads are another config's (that DOCKER_ENV stays too).
        env = (files or {}).get(DOCKER_ENV)
        if env is None or (spec is not None and f" {spec.ref};" in env.split("\n", 1)[0]):
            return ResetEdit()
        return ResetEdit(
            keep=True, reason=f"{path} reads {DOCKER_ENV}, which is another config's; left as it is"
        )

    def reset_probe(
        self, spec: Spec, active: tuple[str, ...], mounts: Sequence[Mount]
    ) -> ResetState:
        return ResetState(
            containers=docker_containers(DOCKER_UNIT in active),
            pool_state=DOCKER_ROOT if os.path.isdir(f"{DOCKER_ROOT}/devicemapper") else "",
        )

    def reset_backup(self, pool_state: str, timestamp: str) -> str:
        return f"{BACKUP_PREFIX}{timestamp}{RESET_SUFFIX}"


PLUGIN = DockerDevicemapper()
