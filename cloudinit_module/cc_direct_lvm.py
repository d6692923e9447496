"""cloud-init module direct_lvm: the LVM thin pool for the container runtime, made on
the first boot and re-checked on every boot (init stage, before docker starts).

The config comes from the `direct_lvm` cloud-config key, or from the file
/etc/direct-lvm/config.yaml (which user-data can carry with write_files: cloud-init
>= 23.4 rejects unknown top-level keys in its schema and reports such boots as
degraded, and offers third-party modules no way to declare theirs).

A thin adapter over direct_lvm.bootpath.run_boot, the path direct-lvm.service runs too
(whichever comes first in a boot does the work; the other says so). Errors are not
caught here: a failure makes cloud-init report an error, and the runtime is kept from
starting on other storage."""

from __future__ import annotations

from cloudinit.settings import PER_ALWAYS

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any

# No `schema` attribute (cloud-init rejects modules that define one) and no
# activate_by_schema_keys: the config may come from a file instead of the key.
meta: dict[str, Any] = {
    "id": "cc_direct_lvm",
    "name": "direct-lvm",
    "title": "LVM thin pool (direct-lvm) for the container runtime",
    "description": "Creates and re-checks the thin pool described by the direct_lvm config.",
    "distros": ["all"],
    "frequency": PER_ALWAYS,
    "examples": [],
}


def handle(
    name: str, cfg: dict[str, Any], cloud: Any, *_legacy: Any, args: Any = None, **_kw: Any
) -> None:
    """cloud-init 22.x calls handle(name, cfg, cloud, log, args) positionally; 24+ calls
    handle(name=, cfg=, cloud=, args=) by keyword, and logs a deprecation (a degraded
    boot) for a five-parameter handle. This signature takes both, silently."""
    import os

    from direct_lvm.cli import BOOT_CONFIG_FILE  # (cli imports nothing at module level)

    if "direct_lvm" in cfg or os.path.exists(BOOT_CONFIG_FILE):
        # the first lvm report runs while the engine is imported (direct_lvm/early.py)
        from direct_lvm.early import start_report

        start_report()
    from direct_lvm.bootpath import BY_MODULE, run_boot

    run_boot(BY_MODULE, cfg)
