"""cloud-init module direct_lvm: the LVM thin pool for the container runtime, made on
the first boot and re-checked on every boot (init stage, before docker starts).

A thin adapter over direct_lvm.core.boot. Errors are not caught here: a failure makes
cloud-init report an error, and docker is kept from starting on other storage."""

from __future__ import annotations

import logging
from typing import Any

from cloudinit.settings import PER_ALWAYS

meta: dict[str, Any] = {
    "id": "cc_direct_lvm",
    "name": "direct-lvm",
    "title": "LVM thin pool (direct-lvm) for the container runtime",
    "description": "Creates and re-checks the thin pool described by the direct_lvm key.",
    "distros": ["all"],
    "frequency": PER_ALWAYS,
    "examples": [],
    "activate_by_schema_keys": ["direct_lvm"],
}

LOG = logging.getLogger(__name__)


def handle(name: str, cfg: dict[str, Any], cloud: Any, *args: Any) -> None:
    """cloud-init < 24 passes (name, cfg, cloud, log, args), later ones (name, cfg,
    cloud, args): both fit this signature."""
    if "direct_lvm" not in cfg:
        LOG.debug("Skipping module named %s, no 'direct_lvm' key in configuration", name)
        return
    from direct_lvm.core import boot

    boot(cfg["direct_lvm"])
