"""The container runtimes direct-lvm can point at its storage: one module per runtime,
each a `Plugin` (base.py), found through the table below by the config's `runtime:`.

To add a runtime: a member of `Runtime` and one line in `TABLE` (table.py), one module here that
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

from functools import cache

from .table import TABLE as TABLE
from .table import Runtime as Runtime

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from .base import Plugin


@cache
def get(name: str) -> Plugin:
    """The plugin for a config's runtime name (a Runtime or its string). Imports only
    that runtime's module. KeyError for an unknown name (the schema refuses those first)."""
    module, _ = TABLE[Runtime(name)]
    # __import__, not importlib.import_module: the same import, but through the
    # interpreter's own import statement path, which `python -X importtime` reports (the
    # import budget's benchmark counted no plugin module before)
    plugin: Plugin = __import__(f"{__name__}.{module}", fromlist=["PLUGIN"]).PLUGIN
    return plugin


def section_owners() -> dict[str, Runtime]:
    """Each runtime section of the config -> the runtime it belongs to."""
    return {section: rt for rt, (_, section) in TABLE.items() if section}
