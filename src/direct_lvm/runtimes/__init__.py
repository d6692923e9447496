"""The container runtimes direct-lvm can point at its storage: one module per runtime,
each a `Plugin` (base.py), found through the table below by the config's `runtime:`.

To add a runtime: a member of `Runtime`, one line in `TABLE`, one module here that
defines `PLUGIN = YourPlugin()`, its templates in templates/, its section (if any) in the
schema (schema/direct_lvm.schema.json: the `runtime` enum and `properties.<section>`),
unit tests and a guest test. Nothing outside this package names a runtime: core, plan,
spec, envs, reset and status ask the plugin.

Modules whose name starts with `_` are shared pieces, not runtimes: `_systemd` (service
state, drop-ins, daemon-reload, restart modes), `_lvroot` (a dedicated XFS LV mounted at
the runtime's root: thick LV, mkfs.xfs, mount unit, online grow, takeover),
`_docker` (what both docker runtimes share), `_thinpool` (the thin pool's profile and
verification, for the runtimes on the pool)."""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from .._compat import StrEnum

if TYPE_CHECKING:
    from .base import Plugin


class Runtime(StrEnum):
    """The config's `runtime:` values."""

    DOCKER_DEVICEMAPPER = "docker-devicemapper"
    CONTAINERD_DEVMAPPER = "containerd-devmapper"
    DOCKER_OVERLAY2 = "docker-overlay2"


# runtime -> (its module in this package, its cloud-config section or None). The section
# is here, not only in the module, so spec.py can refuse a section set for another
# runtime without importing every runtime.
TABLE: dict[Runtime, tuple[str, str | None]] = {
    Runtime.DOCKER_DEVICEMAPPER: ("docker_devicemapper", None),
    Runtime.CONTAINERD_DEVMAPPER: ("containerd_devmapper", "containerd"),
    Runtime.DOCKER_OVERLAY2: ("docker_overlay2", "overlay2"),
}


@cache
def get(name: str) -> Plugin:
    """The plugin for a config's runtime name (a Runtime or its string). Imports only
    that runtime's module. KeyError for an unknown name (the schema refuses those first)."""
    module, _ = TABLE[Runtime(name)]
    plugin: Plugin = importlib.import_module(f"{__name__}.{module}").PLUGIN
    return plugin


def section_owners() -> dict[str, Runtime]:
    """Each runtime section of the config -> the runtime it belongs to."""
    return {section: rt for rt, (_, section) in TABLE.items() if section}
