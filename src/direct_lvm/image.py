"""`direct-lvm image-setup`: prepare an image (at bake time) so that the boot path runs
on every boot: cloud-init's direct_lvm module (the default), or direct-lvm.service
(--no-cloud-init). Checks that cloud-init's own Python can import the module, and leaves
a marker so that a boot with no config is reported. Creates no pool and starts nothing:
disks and user-data are decided when an instance launches."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import __version__
from .bootpath import MARKER
from .core import write_file
from .errors import DirectLvmError
from .render import render
from .run import run
from .runtimes._docker import (
    DEVICEMAPPER_DROPIN_MARK,
    DOCKER_DROPIN,
    DOCKER_UNIT,
    devicemapper_dropin,
)
from .runtimes._systemd import UNIT_DIRS as SERVICE_DIRS
from .runtimes._systemd import unit_exec_start

log = logging.getLogger("direct_lvm")

MODULE = "direct_lvm"
CLOUD_CFG = "etc/cloud/cloud.cfg"
CLOUD_CFG_D = "etc/cloud/cloud.cfg.d"
OUR_CFG = f"{CLOUD_CFG_D}/90_direct_lvm.cfg"


def order_dropin(unit: str) -> str:
    """The drop-in (relative to the root) that orders `unit`.service after cloud-init."""
    return f"etc/systemd/system/{unit}.service.d/10-direct-lvm-order.conf"


ORDER_DROPIN = order_dropin("docker")
CONTAINERD_ORDER_DROPIN = order_dropin("containerd")
SERVICE = "direct-lvm.service"
# Where a package puts the unit (the .deb: /lib/systemd/system); else image-setup
# installs the copy shipped in the wheel into /etc/systemd/system.
UNIT_DIRS = ("lib/systemd/system", "usr/lib/systemd/system")
WANTS_DIR = "etc/systemd/system/multi-user.target.wants"
# systemd's search path for an ExecStart= without a directory (the unit runs
# `direct-lvm boot`, so a .deb in /usr/bin and a pip install in /usr/local/bin both work).
EXEC_DIRS = ("usr/local/sbin", "usr/local/bin", "usr/sbin", "usr/bin", "sbin", "bin")
CLOUD_INIT_BINS = ("usr/bin/cloud-init", "usr/local/bin/cloud-init", "bin/cloud-init")
# cloud-init validates user-data against its own schema from 23.4 on: a top-level
# direct_lvm key then marks the boot degraded.
SCHEMA_STRICT = (23, 4)
# Modules that set up disks and mounts run first; direct_lvm goes right after them.
AFTER = ("mounts", "disk_setup", "growpart", "resizefs")


def _name(entry: Any) -> str:
    name = entry[0] if isinstance(entry, list) else entry
    return str(name).replace("-", "_").removeprefix("cc_")


def current_modules(root: Path) -> list[Any]:
    """cloud_init_modules as cloud-init would read it: cloud.cfg, then cloud.cfg.d/*.cfg
    in name order (a later file's list replaces an earlier one), ours excluded."""
    files = [root / CLOUD_CFG]
    files += sorted(p for p in (root / CLOUD_CFG_D).glob("*.cfg") if p != root / OUR_CFG)
    modules: list[Any] | None = None
    for f in files:
        if not f.is_file():
            continue
        data = yaml.safe_load(f.read_text()) or {}
        if isinstance(data, dict) and isinstance(data.get("cloud_init_modules"), list):
            modules = data["cloud_init_modules"]
    if modules is None:
        raise DirectLvmError(
            f"no cloud_init_modules list in {root / CLOUD_CFG} or {root / CLOUD_CFG_D}",
            "install cloud-init in the image first (apt-get install cloud-init)",
        )
    return modules


def with_module(modules: list[Any]) -> tuple[list[Any], str]:
    """The list with [direct_lvm, always] after the disk modules (once)."""
    out = [m for m in modules if _name(m) != MODULE]
    names = [_name(m) for m in out]
    after = next((a for a in AFTER if a in names), "")
    at = names.index(after) + 1 if after else len(out)
    out.insert(at, [MODULE, "always"])
    return out, after or "the last module"


def shebang_argv(text: str) -> list[str]:
    """The interpreter command line of a script's `#!` line ([] when there is none)."""
    first = text.split("\n", 1)[0]
    if not first.startswith("#!"):
        return []
    return first[2:].split()


_VERSION = re.compile(r"(\d+)\.(\d+)")


def recommended_carrier(version: str | None) -> tuple[str, str]:
    """The carrier `render` should use for this cloud-init version, and why."""
    m = _VERSION.search(version or "")
    if m and (int(m.group(1)), int(m.group(2))) < SCHEMA_STRICT:
        return "file", (
            "works on every cloud-init from 20.4 to 25.x; the direct_lvm key also boots "
            f"clean on this {version}, but not from 23.4 on"
        )
    return "file", (
        "works on every cloud-init from 20.4 to 25.x; the direct_lvm key would mark "
        "boots degraded on 23.4 and later (cloud-init's schema has no room for it)"
    )


# Run by cloud-init's own interpreter: its version, then our two imports.
CHECK_SCRIPT = """
try:
    from cloudinit import version
    print(version.version_string())
except Exception as e:
    print("unknown")
import cc_direct_lvm, direct_lvm
print(direct_lvm.__file__)
"""


@dataclass
class Check:
    """What image-setup found about the boot path it set up (printed by the CLI)."""

    notes: list[str] = field(default_factory=list)
    cloud_init_version: str | None = None


def cloud_init_python(root: Path) -> tuple[Path, list[str]]:
    """cloud-init's entry point under root and the interpreter its `#!` line names."""
    for rel in CLOUD_INIT_BINS:
        exe = root / rel
        if exe.is_file():
            with exe.open("rb") as f:
                head = f.read(512).decode("utf-8", "replace")
            argv = shebang_argv(head)
            if not argv:
                raise DirectLvmError(
                    f"{exe} has no #! line naming its Python",
                    "reinstall cloud-init from the distribution's package",
                )
            return exe, argv
    raise DirectLvmError(
        f"cloud-init's entry point not found under {root} "
        f"(looked at {', '.join('/' + r for r in CLOUD_INIT_BINS)})",
        "install cloud-init in the image first (apt-get install cloud-init), or use "
        "--no-cloud-init to run direct-lvm.service instead",
    )


def check_cloud_init(root: Path) -> Check:
    """Import cc_direct_lvm and direct_lvm with the interpreter cloud-init runs on (read
    from its entry point, not assumed), in the image (chroot) when root is not /."""
    exe, python = cloud_init_python(root)
    check = Check()
    shown = " ".join(python)
    argv = [*python, "-c", CHECK_SCRIPT]
    if root.resolve() != Path("/"):
        if os.geteuid() != 0:
            check.notes.append(
                f"not checked that cloud-init's Python ({shown}) can import direct-lvm's "
                f"module: that needs chroot {root}, as root; run image-setup inside the "
                "image, or as root"
            )
            return check
        argv = ["chroot", str(root), *argv]
    result = run(argv, check=False)
    lines = result.stdout.split()
    check.cloud_init_version = lines[0] if lines and lines[0] != "unknown" else None
    if result.returncode != 0:
        err = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise DirectLvmError(
            f"cloud-init's Python ({shown}, from the #! line of {exe}) cannot import "
            f"direct-lvm's module: {err}",
            "install the .deb (apt-get install ./direct-lvm_*.deb), or pip install the "
            f"wheel into that Python ({python[-1]} -m pip install --no-deps "
            "direct_lvm-*.whl); a pipx or virtualenv install is invisible to cloud-init",
        )
    where = lines[-1] if len(lines) > 1 else "?"
    check.notes.append(
        f"cloud-init {check.cloud_init_version or '(version unknown)'} runs on {shown}, "
        f"which imports cc_direct_lvm and direct_lvm ({where})"
    )
    carrier, why = recommended_carrier(check.cloud_init_version)
    check.notes.append(f"recommended carrier: {carrier} (render --carrier {carrier}): {why}")
    return check


def check_service(root: Path) -> Check:
    """direct-lvm.service runs `direct-lvm boot`: the executable must be where systemd
    looks for a command without a directory."""
    found = [root / d / "direct-lvm" for d in EXEC_DIRS if (root / d / "direct-lvm").exists()]
    if not found:
        raise DirectLvmError(
            f"no direct-lvm executable under {root} in {', '.join('/' + d for d in EXEC_DIRS)}, "
            "where systemd looks for direct-lvm.service's `direct-lvm boot`",
            "install the .deb (apt-get install ./direct-lvm_*.deb), or pip install the "
            "wheel into the system's python3",
        )
    return Check([f"direct-lvm.service will run {found[0]} boot"])


def shipped_unit(name: str = SERVICE) -> Path:
    """A systemd unit as direct-lvm ships it: in the wheel, or systemd/ of the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "systemd" / name, here.parents[1] / "systemd" / name):
        if candidate.is_file():
            return candidate
    raise DirectLvmError(
        f"{name} not found next to {here} (broken install?)", "reinstall direct-lvm"
    )


def unit_in_place(root: Path, name: str, written: list[Path]) -> Path:
    """The unit a package put in place, else the shipped copy installed into
    /etc/systemd/system (appended to written)."""
    unit = next((root / d / name for d in UNIT_DIRS if (root / d / name).is_file()), None)
    if unit is None:
        unit = root / "etc/systemd/system" / name
        write_file(str(unit), shipped_unit(name).read_text())
        log.info("wrote %s", unit)
        written.append(unit)
    return unit


def enable_unit(root: Path, unit: Path, wants_dir: str, written: list[Path]) -> None:
    """Enable unit the way `systemctl enable` would (a link in wants_dir, so it works in
    an image that is not running); the link is appended to written."""
    link = root / wants_dir / unit.name
    target = "/" + unit.relative_to(root).as_posix()
    if not (link.is_symlink() and os.readlink(link) == target):
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
        log.info("enabled %s (%s -> %s)", unit.name, link, target)
    written.append(link)


def install_service(root: Path) -> list[Path]:
    """Enable direct-lvm.service, installing the unit into /etc/systemd/system when no
    package put it in place."""
    written: list[Path] = []
    enable_unit(root, unit_in_place(root, SERVICE, written), WANTS_DIR, written)
    return written


def write_marker(root: Path, mode: str, check: Check) -> Path:
    path = root / MARKER.lstrip("/")
    marker: dict[str, Any] = {
        "version": __version__,
        "mode": mode,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cloud_init": check.cloud_init_version,
    }
    write_file(str(path), json.dumps(marker, indent=2) + "\n")
    return path


def image_setup(
    root: Path = Path("/"), *, cloud_init: bool = True, check: Check | None = None
) -> list[Path]:
    """Write what the boot path needs: the module's registration (or direct-lvm.service,
    enabled), the runtimes' order drop-ins, the marker. Runs nothing: the CLI runs
    check_cloud_init / check_service first and passes their result."""
    check = check or Check()
    written: list[Path] = []
    if cloud_init:
        modules, after = with_module(current_modules(root))
        files = [(OUR_CFG, render("cloud-cfg-direct-lvm.cfg.j2", modules=modules, after=after))]
        unit_after = "cloud-init.service"
    else:
        files = []
        unit_after = SERVICE
        ours = root / OUR_CFG
        if ours.exists():  # set up for cloud-init before: the service takes over
            ours.unlink()
            log.info("removed %s (direct-lvm.service runs the boot path instead)", ours)
        written += install_service(root)
    files += [
        (ORDER_DROPIN, render("docker-order.conf.j2", unit="docker", after=unit_after)),
        (
            CONTAINERD_ORDER_DROPIN,
            render("docker-order.conf.j2", unit="containerd", after=unit_after),
        ),
    ]
    for rel, text in files:
        path = root / rel
        write_file(str(path), text)
        log.info("wrote %s", path)
        written.append(path)
    written += bake_docker_dropin(root, check)
    written += seed_render_record(root)
    written.append(write_marker(root, "cloud-init" if cloud_init else "service", check))
    return written


# The layouts whose files image-setup renders into the render record: each thin-pool
# runtime's defaults (the devices entry names no disk that is read), and the baked
# config of direct-lvm.service when there is one.
SEED_DEVICE = "/dev/disk/by-id/direct-lvm-image-setup"


def seed_runtimes() -> list[str]:
    from . import runtimes

    return [str(r) for r in runtimes.TABLE if runtimes.get(r).thin]


def seed_render_record(root: Path) -> list[Path]:
    """On the live system only (the record's keys name this Python's jinja2 and this
    root's units): core.seed_record for the default layouts and the baked config. A
    baked config that does not validate is left to the boot, which names its error."""
    from .core import BOOT_CONFIG_FILE, seed_record
    from .errors import ConfigError
    from .render import RECORD
    from .spec import from_mapping, load_file

    if root.resolve() != Path("/"):
        return []
    specs = [from_mapping({"runtime": r, "devices": [SEED_DEVICE]}) for r in seed_runtimes()]
    if Path(BOOT_CONFIG_FILE).is_file():
        try:
            specs.append(load_file(BOOT_CONFIG_FILE))
        except ConfigError as e:
            log.info("%s does not validate (the boot will say why): %s", BOOT_CONFIG_FILE,
                     e.message.splitlines()[0])  # fmt: skip
    count = seed_record(specs)
    if not Path(RECORD).is_file():  # not writable: a cache, the first boot renders
        return []
    log.info("rendered %d file(s) of %d layout(s) into %s", count, len(specs), RECORD)
    return [Path(RECORD)]


def bake_docker_dropin(root: Path, check: Check) -> list[Path]:
    """docker-devicemapper's drop-in, which depends only on docker.service: baked now,
    systemd loads it when the image boots, and the first boot's apply writes only the
    storage options (an EnvironmentFile), with no daemon-reload. Without docker in the
    image (or with another drop-in of ours there, docker-overlay2's) nothing is written:
    the first apply that needs it writes it and reloads."""
    unit = next(
        (
            root / d.lstrip("/") / DOCKER_UNIT
            for d in SERVICE_DIRS
            if (root / d.lstrip("/") / DOCKER_UNIT).is_file()
        ),
        None,
    )
    exec_start = unit_exec_start(unit.read_text()) if unit is not None else None
    if exec_start is None:
        check.notes.append(
            f"no {DOCKER_UNIT} with an ExecStart= in the image: docker-devicemapper's "
            "drop-in is not baked; the first apply writes it (and runs systemctl daemon-reload)"
        )
        return []
    path = root / DOCKER_DROPIN.lstrip("/")
    if path.exists() and not path.read_text().startswith(DEVICEMAPPER_DROPIN_MARK):
        check.notes.append(f"{path} holds another drop-in (docker-overlay2's?); left as it is")
        return []
    write_file(str(path), devicemapper_dropin(exec_start))
    log.info("wrote %s", path)
    return [path]


# ------------------------------------------------------------------ metrics timer
METRICS_UNITS = ("direct-lvm-metrics.service", "direct-lvm-metrics.timer")
TIMER_WANTS = "etc/systemd/system/timers.target.wants"


def metrics_timer_setup(root: Path = Path("/")) -> list[Path]:
    """Enable direct-lvm-metrics.timer, installing the service and timer into
    /etc/systemd/system when no package put them in place."""
    written: list[Path] = []
    units = [unit_in_place(root, name, written) for name in METRICS_UNITS]
    enable_unit(root, units[1], TIMER_WANTS, written)
    return written
