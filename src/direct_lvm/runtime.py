"""What the container runtime on this host is: installed?, which version, running with
which arguments, and the ExecStart our drop-in must extend. Reads only; no changes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .run import run

UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
DOCKER_UNIT = "docker.service"
DOCKER_DROPIN = "/etc/systemd/system/docker.service.d/direct-lvm.conf"


@dataclass(frozen=True)
class ServiceState:
    unit: str
    installed: bool
    version: tuple[int, int] | None = None
    version_text: str = ""
    active: bool = False
    cmdline: tuple[str, ...] = ()
    exec_start: str | None = None  # the unit's own ExecStart, in systemd syntax


def parse_docker_version(text: str) -> tuple[int, int] | None:
    """'Docker version 20.10.24+dfsg1, build 297e128' -> (20, 10)."""
    m = re.search(r"version v?(\d+)\.(\d+)", text)
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


def probe_docker() -> ServiceState:
    unit = find_unit(DOCKER_UNIT)
    if unit is None:
        return ServiceState(DOCKER_UNIT, installed=False)
    ver = run(["dockerd", "--version"], check=False)
    show = parse_show(
        run(
            ["systemctl", "show", DOCKER_UNIT, "-p", "ActiveState", "-p", "MainPID"], check=False
        ).stdout  # fmt: skip
    )
    active = show.get("ActiveState") == "active"
    cmdline: tuple[str, ...] = ()
    pid = show.get("MainPID", "0")
    if active and pid.isdigit() and pid != "0":
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            cmdline = tuple(a.decode() for a in raw.split(b"\0") if a)
        except OSError:
            cmdline = ()
    return ServiceState(
        unit=DOCKER_UNIT,
        installed=ver.returncode == 0,
        version=parse_docker_version(ver.stdout) if ver.returncode == 0 else None,
        version_text=ver.stdout.strip(),
        active=active,
        cmdline=cmdline,
        exec_start=unit_exec_start(unit.read_text()),
    )
