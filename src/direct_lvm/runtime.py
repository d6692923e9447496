"""What the container runtime on this host is: installed?, which version, running with
which arguments, and the ExecStart our drop-in must extend. Reads only; no changes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from ._compat import StrEnum
from .errors import CommandError
from .run import run

UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
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


class RestartMode(StrEnum):
    NOW = "now"  # CLI: restart the runtime and wait for it
    BOOT = "boot"  # cloud-init: never start it; restart only if already running, no-block
    NEVER = "never"  # --no-restart


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


@dataclass(frozen=True)
class ServiceState:
    unit: str
    installed: bool
    version: tuple[int, int] | None = None
    version_text: str = ""
    active: bool = False
    cmdline: tuple[str, ...] = ()
    exec_start: str | None = None  # the unit's own ExecStart, in systemd syntax
    # systemd has not read the unit's files since they changed (a run stopped between
    # writing the drop-in and daemon-reload): a restart would use the old definition
    need_reload: bool = False


def parse_docker_version(text: str) -> tuple[int, int] | None:
    """'Docker version 20.10.24+dfsg1, build 297e128' -> (20, 10)."""
    m = re.search(r"version (?:\d+:)?v?(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def unit_exec_start(unit_text: str) -> str | None:
    """The last effective ExecStart= of a unit's [Service] section (continuations joined)."""
    text = re.sub(r"\\\n", " ", unit_text)
    section = ""
    value: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line
        elif section == "[Service]" and line.startswith("ExecStart="):
            v = line[len("ExecStart=") :].strip()
            value = v or None  # an empty assignment resets the list
    return value


def parse_show(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


def find_unit(name: str) -> Path | None:
    return next((p for d in UNIT_DIRS if (p := Path(d) / name).is_file()), None)


def probe_docker(*, service_state: bool = True) -> ServiceState:
    """The docker unit (a file read), and with service_state whether it runs and with which
    arguments (one systemctl call). The version costs a dockerd start: see with_version."""
    unit = find_unit(DOCKER_UNIT)
    if unit is None:
        return ServiceState(DOCKER_UNIT, installed=False)
    active, need_reload = False, False
    cmdline: tuple[str, ...] = ()
    if service_state:
        active, cmdline, need_reload = _service_state(DOCKER_UNIT)
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


def parse_dpkg_versions(text: str) -> str | None:
    """The version of the first installed package in dpkg-query's
    '${Version} ${db:Status-Status}' lines."""
    for line in text.splitlines():
        version, _, status = line.partition(" ")
        if status.strip() == "installed" and version:
            return version
    return None


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


def dropins_stale(unit: str, loaded: str, on_disk: list[str]) -> bool:
    """True when the drop-ins systemd loaded (DropInPaths, space-separated) from
    /etc/systemd/system/<unit>.d/ differ from the .conf files there: NeedDaemonReload
    stays "no" for a drop-in directory that did not exist at the last load."""
    prefix = f"/etc/systemd/system/{unit}.d/"
    return {p for p in loaded.split() if p.startswith(prefix)} != set(on_disk)


def _service_state(unit: str) -> tuple[bool, tuple[str, ...], bool]:
    props = ("ActiveState", "MainPID", "NeedDaemonReload", "DropInPaths")
    argv = ["systemctl", "show", unit, *(a for p in props for a in ("-p", p))]
    show = parse_show(run(argv, check=False).stdout)
    active = show.get("ActiveState") == "active"
    on_disk = sorted(str(p) for p in Path(f"/etc/systemd/system/{unit}.d").glob("*.conf"))
    need_reload = show.get("NeedDaemonReload") == "yes" or dropins_stale(
        unit, show.get("DropInPaths", ""), on_disk
    )
    pid = show.get("MainPID", "0")
    if not (active and pid.isdigit() and pid != "0"):
        return active, (), need_reload
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return active, (), need_reload
    return active, tuple(a.decode() for a in raw.split(b"\0") if a), need_reload
