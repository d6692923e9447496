"""What every runtime needs from systemd, written once: the unit's state (installed,
running, arguments, NeedDaemonReload), the installed package's version from dpkg, and
the plan's systemd steps (daemon-reload when a unit file changed or systemd has not read
it, and the restart chain per RestartMode). Probes read only; plan helpers are pure."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .._compat import StrEnum
from .._record import Record, record
from ..errors import CommandError
from ..run import run
from ..steps import Kind, PlanBuilder

UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


class RestartMode(StrEnum):
    NOW = "now"  # CLI: restart the runtime and wait for it
    BOOT = "boot"  # cloud-init: never start it; restart only if already running, no-block
    NEVER = "never"  # --no-restart


@record
class ServiceState(Record):
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


def parse_dpkg_versions(text: str) -> str | None:
    """The version of the first installed package in dpkg-query's
    '${Version} ${db:Status-Status}' lines."""
    for line in text.splitlines():
        version, _, status = line.partition(" ")
        if status.strip() == "installed" and version:
            return version
    return None


# dpkg's database (dpkg(1), FILES): one deb822 stanza per package, with its Status
# ("want flag status": "install ok installed") and Version.
DPKG_STATUS = "/var/lib/dpkg/status"


def parse_dpkg_status(text: str, packages: tuple[str, ...]) -> str | None:
    """The version of the first of `packages` whose stanza in dpkg's status file says
    installed (as dpkg-query's ${db:Status-Status}); None when none is."""
    for name in packages:
        start = 0
        head = f"Package: {name}\n"
        while (at := text.find(head, start)) >= 0:
            start = at + len(head)
            if at and text[at - 1] != "\n":  # "Package:" opens a line
                continue
            end = text.find("\n\n", at)
            fields = dict(
                line.split(": ", 1)
                for line in text[at : end if end >= 0 else len(text)].splitlines()
                if ": " in line and not line.startswith(" ")
            )
            if fields.get("Status", "").split()[-1:] == ["installed"] and fields.get("Version"):
                return fields["Version"]
    return None


def dpkg_version(packages: tuple[str, ...]) -> str | None:
    """The installed version of the first of `packages` dpkg knows, read from dpkg's
    status file (a dpkg-query process cost 0.1-0.4 s under TCG); with no such file, one
    dpkg-query; None when none is installed or there is no dpkg."""
    try:
        with open(DPKG_STATUS, encoding="utf-8", errors="replace") as fh:
            return parse_dpkg_status(fh.read(), packages)
    except OSError:
        pass
    try:
        pkg = run(["dpkg-query", "-W", "-f", "${Version} ${db:Status-Status}\n", *packages],
                  check=False)  # fmt: skip
    except CommandError:  # no dpkg on this distribution
        return None
    return parse_dpkg_versions(pkg.stdout)


def dropins_stale(unit: str, loaded: str, on_disk: list[str]) -> bool:
    """True when the drop-ins systemd loaded (DropInPaths, space-separated) from
    /etc/systemd/system/<unit>.d/ differ from the .conf files there: NeedDaemonReload
    stays "no" for a drop-in directory that did not exist at the last load."""
    prefix = f"/etc/systemd/system/{unit}.d/"
    return {p for p in loaded.split() if p.startswith(prefix)} != set(on_disk)


# Where systemd keeps a service's processes: the unified hierarchy (cgroup v2), the
# hybrid layout's unified mount, or the legacy name=systemd hierarchy (cgroup v1).
CGROUP_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd")
# Every daemon-reload (and the boot) deletes and remakes these before systemd reads any
# unit file (manager_reload: lookup_paths_flush_generator, then the generators run,
# then the units load): a unit file older than the ones that exist was read.
GENERATOR_DIRS = ("/run/systemd/generator", "/run/systemd/generator.early",
                  "/run/systemd/generator.late")  # fmt: skip
# systemd's unit search path (system manager), each directory's files and drop-ins
UNIT_SEARCH = ("/etc/systemd/system.control", "/run/systemd/system.control",
               "/run/systemd/transient", "/etc/systemd/system", "/run/systemd/system",
               "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
               "/lib/systemd/system")  # fmt: skip


def _mtime_ns(path: str) -> int | None:
    try:
        return os.lstat(path).st_mtime_ns
    except OSError:
        return None


def _sets_slice(path: str) -> bool:
    """The unit file or drop-in at path sets Slice= (an unreadable one does not count,
    as systemd skips it too)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return False
    return re.search(r"^\s*Slice\s*=", text, re.M) is not None


def _loaded_since(unit: str) -> bool:
    """True when systemd has read every file of `unit` as it is now and none of them
    sets Slice=: no directory of the search path, no file of it, no drop-in directory
    (type-wide `service.d` too) nor anything in one changed since the last daemon-reload
    began (the oldest generator directory). False when any did, or when that cannot be
    told (no generator directory). One walk (os.lstat on strings: each path is looked
    at once, issue 13). It trusts the wall clock as systemd's own NeedDaemonReload does
    not (it compares each file's mtime with the one it read): a clock stepped back past
    the last reload, then a run stopped between a unit file and its reload, would go
    unseen."""
    marks = [m for d in GENERATOR_DIRS if (m := _mtime_ns(d)) is not None]
    if not marks:
        return False
    loaded = min(marks)
    kind = unit.rsplit(".", 1)[-1]
    for base in UNIT_SEARCH:
        base_mtime = _mtime_ns(base)
        if base_mtime is None:
            continue  # no such directory: no file of the unit in it
        # a unit file or drop-in directory made or removed changes its directory (the
        # transient one changes with every login's scope: no docker there)
        if not base.endswith("/transient") and base_mtime >= loaded:
            return False
        for name in (unit, f"{unit}.d", f"{kind}.d"):
            path = f"{base}/{name}"
            mtime = _mtime_ns(path)
            if mtime is None:
                continue
            if mtime >= loaded:
                return False
            if name == unit:
                if _sets_slice(path):
                    return False
                continue
            try:
                entries = os.listdir(path)
            except OSError:
                return False
            for entry in entries:
                inside = f"{path}/{entry}"
                if (_mtime_ns(inside) or loaded) >= loaded:
                    return False
                if entry.endswith(".conf") and _sets_slice(inside):
                    return False
    return True


def quiet_service(unit: str) -> bool:
    """True when the service `unit` is certainly stopped with nothing for systemd to
    reload, told without a process: systemd has no cgroup for it (it removes a
    service's cgroup once the service has stopped and its last process is gone) in
    the slice its files name (system.slice unless one sets Slice=), and its files are
    older than the last daemon-reload. For a service whose main process runs as long
    as it is active (dockerd, containerd); anything else, or any doubt, is False (then
    systemctl answers)."""
    roots = [r for r in CGROUP_ROOTS if os.path.isfile(f"{r}/cgroup.procs")]
    if not roots or any(os.path.exists(f"{r}/system.slice/{unit}") for r in roots):
        return False
    return _loaded_since(unit)


def unit_state(unit: str, *, cheap: bool = False) -> tuple[bool, tuple[str, ...], bool]:
    """(active, the main process's argv, systemd must reload the unit's files): one
    systemctl call and a read of /proc/<pid>/cmdline; with `cheap` (a service whose main
    process lives as long as it is active), none when quiet_service says it is stopped
    with nothing to reload (`systemctl show` costs 0.3-0.4 s under TCG)."""
    if cheap and quiet_service(unit):
        return False, (), False
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


# ------------------------------------------------------------------ plan helpers (pure)


def daemon_reload(b: PlanBuilder, needed: bool, service: ServiceState | None, why: str) -> None:
    """daemon-reload when this plan writes a unit file or drop-in (`needed`, with `why`),
    else when a run stopped between writing one and reloading left systemd stale."""
    if needed:
        b.run(why, "systemctl", "daemon-reload", kind=Kind.RELOAD)
    elif service is not None and service.need_reload:
        b.run(
            f"systemd has not read {service.unit}'s changed files (NeedDaemonReload)",
            "systemctl",
            "daemon-reload",
            kind=Kind.RELOAD,
        )


def stop(b: PlanBuilder, service: ServiceState | None, units: tuple[str, ...], why: str) -> bool:
    """Stop the runtime's `units` (socket first) when its service runs. Returns whether
    it was stopped."""
    if service is not None and service.active:
        b.run(why, "systemctl", "stop", *units, kind=Kind.STOP)
        return True
    return False


def converge_service(
    b: PlanBuilder,
    service: ServiceState | None,
    mode: RestartMode,
    *,
    name: str,
    changed: bool,
    boot_changed: bool,
    healthy: bool,
    why_changed: str,
    why_unhealthy: str,
    why_boot: str,
    stopped: bool = False,
    why_start_after_stop: str | None = None,
) -> None:
    """The restart chain, per mode. NEVER: nothing. BOOT (inside cloud-init, the runtime
    ordered after it): never a blocking start; a runtime this plan stopped starts again
    --no-block when `why_start_after_stop` says so; a running one that must pick up a
    change (`boot_changed`) or is not on our storage (not `healthy`) gets try-restart
    --no-block. NOW: restart and wait (Kind.RESTART, so verify checks the runtime) when
    its config `changed`, it was `stopped`, it is not running, or not `healthy`."""
    if mode is RestartMode.NEVER or service is None:
        return
    if mode is RestartMode.BOOT:
        if stopped:
            if why_start_after_stop:
                b.run(why_start_after_stop, "systemctl", "start", "--no-block", service.unit,
                      kind=Kind.START)  # fmt: skip
        elif service.active and (boot_changed or not healthy):
            b.run(why_boot, "systemctl", "try-restart", "--no-block", service.unit,
                  kind=Kind.START)  # fmt: skip
        return
    if changed or stopped or not service.active or not healthy:
        why = (
            why_changed
            if changed or stopped
            else f"{name} is not running"
            if not service.active
            else why_unhealthy
        )
        b.run(why, "systemctl", "restart", service.unit, kind=Kind.RESTART)
