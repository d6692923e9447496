"""What both docker runtimes share (docker-devicemapper, docker-overlay2): docker's
unit, version and arguments, /etc/docker/daemon.json's conflicts, what /var/lib/docker
holds that is not ours, the version gate's common part, `docker info` after a restart,
and reset's view of docker's containers. Probes read only; plan helpers are pure."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError
from ..run import run
from ._systemd import ServiceState, dpkg_version, find_unit, unit_exec_start, unit_state

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any

DOCKER_UNIT = "docker.service"
DOCKER_DROPIN = "/etc/systemd/system/docker.service.d/direct-lvm.conf"
# docker-devicemapper's storage options, read by DOCKER_DROPIN's EnvironmentFile= at each
# dockerd start: writing them needs no daemon-reload (container-storage-setup's
# /etc/sysconfig/docker-storage works the same way).
DOCKER_ENV = "/etc/direct-lvm/docker-storage.env"
DOCKER_SOCKET = "docker.socket"
# `systemctl stop` order (the socket first: it would start docker again), and the
# order a failed boot masks them in
DOCKER_UNITS = (DOCKER_SOCKET, DOCKER_UNIT)
DOCKER_HOLD_UNITS = (DOCKER_UNIT, DOCKER_SOCKET)
DOCKER_ROOT = "/var/lib/docker"
DAEMON_JSON = "/etc/docker/daemon.json"
BACKUP_PREFIX = "/var/lib/docker.direct-lvm-backup-"
# Storage of other graph drivers; their presence means /var/lib/docker is not on our pool.
FOREIGN_DRIVERS = ("overlay2", "overlay", "aufs", "btrfs", "zfs", "vfs", "fuse-overlayfs")
# Keys of daemon.json that conflict with the drop-in's flags (dockerd refuses both at once).
CONFLICTING_KEYS = ("storage-driver", "storage-opts")


def foreign_storage(root: str = DOCKER_ROOT) -> tuple[str, ...]:
    """What in /var/lib/docker belongs to storage other than a devicemapper thin pool:
    another graph driver's directories, or loop-lvm's sparse data files."""
    base = Path(root)
    found = [f"{root}/{d}" for d in FOREIGN_DRIVERS if (base / d).is_dir()]
    found += [f"{root}/image/{d}" for d in FOREIGN_DRIVERS if (base / "image" / d).is_dir()]
    loop = base / "devicemapper" / "devicemapper"
    found += [str(loop / f) for f in ("data", "metadata") if (loop / f).is_file()]
    return tuple(found)


def daemon_json_conflicts(text: str | None, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Keys of /etc/docker/daemon.json that our flags (or, with `extra`, our storage
    location) would conflict with."""
    if text is None or not text.strip():
        return ()
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("daemon.json is not a JSON object")
    return tuple(k for k in (*CONFLICTING_KEYS, *extra) if k in data)


def backups() -> list[str]:
    parent = Path(BACKUP_PREFIX).parent
    name = Path(BACKUP_PREFIX).name
    try:
        return sorted(str(p) for p in parent.iterdir() if p.name.startswith(name))
    except OSError:
        return []


def parse_docker_version(text: str) -> tuple[int, int] | None:
    """'Docker version 20.10.24+dfsg1, build 297e128' -> (20, 10)."""
    m = re.search(r"version (?:\d+:)?v?(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


# The first line of devicemapper_dropin's text (image-setup and reset recognize it by it).
DEVICEMAPPER_DROPIN_MARK = "# Written by direct-lvm (image-setup at bake time, or apply)"


def devicemapper_dropin(exec_start: str) -> str:
    """docker's drop-in for docker-devicemapper: the vendor ExecStart (storage flags
    stripped) plus $DIRECT_LVM_DOCKER_STORAGE from DOCKER_ENV. It depends only on the
    vendor unit, so image-setup bakes it and a first boot only writes DOCKER_ENV."""
    from ..render import render

    return render(
        "docker-devicemapper.conf.j2",
        exec_start=strip_storage_flags(exec_start),
        env_file=DOCKER_ENV,
    )


def probe_docker(*, service_state: bool = True) -> ServiceState:
    """The docker unit (a file read), and with service_state whether it runs and with which
    arguments (one systemctl call). The version costs a dockerd start: see with_version."""
    unit = find_unit(DOCKER_UNIT)
    if unit is None:
        return ServiceState(DOCKER_UNIT, installed=False)
    active, need_reload = False, False
    cmdline: tuple[str, ...] = ()
    if service_state:
        active, cmdline, need_reload = unit_state(DOCKER_UNIT, cheap=True)
    return ServiceState(
        unit=DOCKER_UNIT,
        installed=True,
        active=active,
        cmdline=cmdline,
        exec_start=unit_exec_start(unit.read_text()),
        need_reload=need_reload,
    )


# Packages that ship dockerd, in the order a host is likely to have them.
DOCKER_PACKAGES = ("docker.io", "docker-ce", "moby-engine")


def with_version(state: ServiceState) -> ServiceState:
    """The docker version: from dpkg's database when a package ships dockerd (a
    dockerd start costs seconds under emulation), else from `dockerd --version`."""
    version = dpkg_version(DOCKER_PACKAGES)
    if version:
        return replace(
            state,
            version=parse_docker_version(f"version {version}"),
            version_text=f"Docker {version}",
        )
    ver = run(["dockerd", "--version"], check=False)
    if ver.returncode != 0:
        return replace(state, installed=False, version_text=(ver.stderr or ver.stdout).strip())
    return replace(state, version=parse_docker_version(ver.stdout), version_text=ver.stdout.strip())


def strip_storage_flags(exec_start: str) -> str:
    """The unit's ExecStart without storage options of its own (ours replace them)."""
    return re.sub(r"\s+--storage-(driver|opt)(=|\s+)\S+", "", exec_start)


def check_daemon_json(text: str | None, extra: tuple[str, ...] = ()) -> None:
    """Refuse a daemon.json that sets what our drop-in sets (or, with `extra`, a storage
    location of its own)."""
    try:
        conflicts = daemon_json_conflicts(text, extra)
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


def require_docker(runtime: str, docker: ServiceState | None, needs: str = "") -> ServiceState:
    """The gate's first part: dockerd is installed (`needs`: a version bound to name)."""
    if docker is None or not docker.installed:
        raise ConfigError(
            f"runtime {runtime} needs Docker{needs}, but dockerd is not installed (no "
            "docker.service)",
            "install docker.io (or docker-ce) or choose another runtime",
        )
    return docker


def require_exec_start(docker: ServiceState) -> None:
    """The gate's last part: the unit has an ExecStart our drop-in can repeat."""
    if docker.exec_start is None:
        raise ConfigError(
            "docker.service has no ExecStart= to extend", "reinstall the docker package"
        )


def docker_info_problems(driver: str, more: Callable[[dict[str, Any]], list[str]]) -> list[str]:
    """After a restart: `docker info` names `driver`, and whatever `more` checks."""
    info = run(["docker", "info", "--format", "{{json .}}"], check=False)
    if info.returncode != 0:
        return [f"docker info failed: {info.stderr.strip()}"]
    data = json.loads(info.stdout)
    out = []
    if data.get("Driver") != driver:
        out.append(f"docker storage driver {data.get('Driver')!r}, expected {driver!r}")
    return out + more(data)


def docker_containers(active: bool) -> tuple[str, ...]:
    """docker ps -aq when dockerd runs (never socket-activate it); else what
    /var/lib/docker/containers holds (reset)."""
    if active:
        r = run(["docker", "ps", "-aq", "--no-trunc"], check=False)
        if r.returncode == 0:
            return tuple(r.stdout.split())
    try:
        return tuple(sorted(os.listdir(f"{DOCKER_ROOT}/containers")))
    except OSError:
        return ()
