"""What the container runtime on this host is: installed?, which version, running with
which arguments, and the ExecStart our drop-in must extend. Reads only; no changes."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from .errors import CommandError
from .run import run
from .runtimes._systemd import (
    RestartMode,
    ServiceState,
    dropins_stale,
    find_unit,
    parse_dpkg_versions,
    parse_show,
    unit_exec_start,
    unit_state,
)

DOCKER_UNIT = "docker.service"
DOCKER_DROPIN = "/etc/systemd/system/docker.service.d/direct-lvm.conf"
DOCKER_SOCKET = "docker.socket"
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


def probe_docker(*, service_state: bool = True) -> ServiceState:
    """The docker unit (a file read), and with service_state whether it runs and with which
    arguments (one systemctl call). The version costs a dockerd start: see with_version."""
    unit = find_unit(DOCKER_UNIT)
    if unit is None:
        return ServiceState(DOCKER_UNIT, installed=False)
    active, need_reload = False, False
    cmdline: tuple[str, ...] = ()
    if service_state:
        active, cmdline, need_reload = unit_state(DOCKER_UNIT)
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
    try:
        pkg = run(["dpkg-query", "-W", "-f", "${Version} ${db:Status-Status}\n",
                   *DOCKER_PACKAGES], check=False)  # fmt: skip
        version = parse_dpkg_versions(pkg.stdout)
    except CommandError:  # no dpkg on this distribution
        version = None
    if version:
        return replace(state, version=parse_docker_version(f"version {version}"),
                       version_text=f"Docker {version}")  # fmt: skip
    ver = run(["dockerd", "--version"], check=False)
    if ver.returncode != 0:
        return replace(state, installed=False, version_text=(ver.stderr or ver.stdout).strip())
    return replace(state, version=parse_docker_version(ver.stdout), version_text=ver.stdout.strip())


__all__ = [
    "RestartMode", "ServiceState", "dropins_stale", "find_unit", "parse_dpkg_versions",
    "parse_show", "unit_exec_start",
]  # fmt: skip
