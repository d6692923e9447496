"""`direct-lvm image-setup`: prepare an image (at bake time) so that cloud-init runs the
direct_lvm module on every boot. Creates no pool and starts nothing: disks and user-data
are decided when an instance launches."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from .core import write_file
from .errors import DirectLvmError
from .render import render

log = logging.getLogger("direct_lvm")

MODULE = "direct_lvm"
CLOUD_CFG = "etc/cloud/cloud.cfg"
CLOUD_CFG_D = "etc/cloud/cloud.cfg.d"
OUR_CFG = f"{CLOUD_CFG_D}/90_direct_lvm.cfg"
ORDER_DROPIN = "etc/systemd/system/docker.service.d/10-direct-lvm-order.conf"
CONTAINERD_ORDER_DROPIN = "etc/systemd/system/containerd.service.d/10-direct-lvm-order.conf"
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


def image_setup(root: Path = Path("/")) -> list[Path]:
    modules, after = with_module(current_modules(root))
    written = []
    for rel, text in (
        (OUR_CFG, render("cloud-cfg-direct-lvm.cfg.j2", modules=modules, after=after)),
        (ORDER_DROPIN, render("docker-order.conf.j2", unit="docker")),
        (CONTAINERD_ORDER_DROPIN, render("docker-order.conf.j2", unit="containerd")),
    ):
        path = root / rel
        write_file(str(path), text)
        log.info("wrote %s", path)
        written.append(path)
    return written
