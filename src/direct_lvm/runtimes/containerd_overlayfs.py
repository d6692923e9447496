"""containerd-overlayfs: containerd's root, /var/lib/containerd, on a dedicated thick LV
with XFS (ftype=1), for nodes whose containerd keeps images and containers in its
default overlayfs snapshotter there (Kubernetes nodes). The LV, its mount unit
(var-lib-containerd.mount), the takeover and the online grow are `_lvroot`'s; this
module adds containerd's side: a drop-in that makes containerd.service require the
mount, and the refusal of a containerd config (config.toml, or a file it imports) that
would put containerd's storage elsewhere or off overlayfs. config.toml is only read."""

from __future__ import annotations

import glob
import posixpath
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._compat import toml_loads
from .._record import record
from ..errors import ConfigError
from ..model import Spec
from ..observed import RuntimeState
from ..render import render, toml_str
from ..run import run
from ..steps import PlanBuilder
from ._lvroot import LvRootPlugin, mount_unit_name, probe_root_dir, read_text
from ._systemd import RestartMode, converge_service
from .base import PlanInput
from .table import Runtime

ROOT = "/var/lib/containerd"
UNIT = "containerd.service"
CONFIG = "/etc/containerd/config.toml"
DROPIN = f"/etc/systemd/system/{UNIT}.d/direct-lvm.conf"
MOUNT_UNIT = mount_unit_name(ROOT)
SNAPSHOTTER = "io.containerd.snapshotter.v1.overlayfs"
DEVMAPPER = "io.containerd.snapshotter.v1.devmapper"
# where containerd's config chooses CRI's snapshotter: 1.x (config version 2, and the
# short name of version 1), 2.x (version 3)
CRI_SNAPSHOTTER = (
    ("io.containerd.grpc.v1.cri", "containerd", "snapshotter"),
    ("cri", "containerd", "snapshotter"),
    ("io.containerd.cri.v1.images", "snapshotter"),
)


@record
class State(RuntimeState):
    configs: tuple[tuple[str, str], ...] = ()  # config.toml and what it imports: (path, text)


def read_configs(
    read: Callable[[str], str | None], expand: Callable[[str], list[str]] = glob.glob
) -> tuple[tuple[str, str], ...]:
    """config.toml and every file it imports (recursively, each once) as (path, text):
    the files containerd merges. An `imports` entry is relative to the importing file's
    directory, and a glob pattern stands for its sorted matches. Reads only."""
    out: list[tuple[str, str]] = []
    todo, seen = [CONFIG], set()
    while todo:
        path = todo.pop(0)
        text = None if path in seen else read(path)
        seen.add(path)
        if text is None:
            continue
        out.append((path, text))
        try:
            imports = toml_loads(text).get("imports")
        except ValueError:
            continue  # conflicts() names it
        for entry in imports if isinstance(imports, list) else []:
            p = posixpath.join(posixpath.dirname(path), str(entry))  # an absolute one wins
            todo += sorted(expand(p)) if glob.has_magic(p) else [p]
    return tuple(out)


def _at(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, Mapping) else None
    return data


def _dotted(keys: Sequence[str]) -> str:
    return ".".join(toml_str(k) if "." in k else k for k in keys)


def conflicts(configs: Sequence[tuple[str, str]]) -> list[str]:
    """What in containerd's config files would keep its storage off our LV at ROOT, or
    off the overlayfs snapshotter there: one line each, naming the file and the value."""
    out = []
    for path, text in configs:
        try:
            data = toml_loads(text)
        except ValueError as e:
            out.append(f"{path} is not valid TOML ({e})")
            continue
        root = data.get("root")
        if root is not None and posixpath.normpath(str(root)) != ROOT:
            out.append(f"{path} sets root = {toml_str(root)}")
        plugins = data.get("plugins")
        if _at(plugins, DEVMAPPER) is not None or _at(plugins, "devmapper") is not None:
            out.append(f"{path} configures the devmapper snapshotter (containerd-devmapper)")
        own = _at(plugins, SNAPSHOTTER, "root_path") or _at(plugins, "overlayfs", "root_path")
        if own and not posixpath.normpath(str(own)).startswith(ROOT + "/"):
            out.append(
                f"{path} sets {_dotted(('plugins', SNAPSHOTTER, 'root_path'))} = {toml_str(own)}"
            )
        disabled = data.get("disabled_plugins")
        if isinstance(disabled, list) and {SNAPSHOTTER, "overlayfs"} & set(map(str, disabled)):
            out.append(f"{path} lists {SNAPSHOTTER} in disabled_plugins")
        for keys in CRI_SNAPSHOTTER:
            chosen = _at(plugins, *keys)
            if chosen not in (None, "", "overlayfs"):
                out.append(f"{path} sets {_dotted(('plugins', *keys))} = {toml_str(chosen)}")
    return out


def overlayfs_status(ctr_plugins: str) -> str | None:
    """The overlayfs snapshotter's STATUS in `ctr plugins ls` output (None if absent)."""
    rows = (line.split() for line in ctr_plugins.splitlines())
    return next((r[-1] for r in rows if r[:2] == SNAPSHOTTER.rsplit(".", 1)), None)


class ContainerdOverlayfs(LvRootPlugin):
    name = Runtime.CONTAINERD_OVERLAYFS
    section = "containerd_overlayfs"
    root = ROOT
    label = "containerd"
    package = "containerd"
    units = (UNIT,)
    hold_units = (UNIT,)
    service_unit = UNIT
    order_unit = "containerd"

    def probe(self, spec: Spec, *, restart: RestartMode) -> State:
        from .containerd_devmapper import probe_containerd

        # always the service state (one systemctl call): even --no-restart must know
        # whether systemd still has to read a drop-in an interrupted run wrote
        service = probe_containerd(service_state=True)
        root, foreign = probe_root_dir(spec.lv_path, ROOT)
        return State(service=service, foreign=foreign, root=root, configs=read_configs(read_text))

    def files(self, spec: Spec, state: RuntimeState) -> dict[str, str]:
        return {
            self.mount_unit_path: self.mount_unit(spec, before=UNIT),
            DROPIN: render(
                "containerd-overlayfs.conf.j2",
                vg=spec.vg,
                lv=spec.lv,
                root=ROOT,
                mount_unit=MOUNT_UNIT,
            ),
        }

    def refuse_config(
        self, b: PlanBuilder, spec: Spec, state: RuntimeState, files: Mapping[str, str]
    ) -> None:
        found = conflicts(state.configs if isinstance(state, State) else ())
        if found:
            raise ConfigError(
                f"containerd's config would keep its storage off {spec.lv_path} at {ROOT}: "
                + "; ".join(found),
                f"remove those settings (runtime {self.name} puts containerd's root, "
                f"{ROOT}, on its own LV and uses the default overlayfs snapshotter there), "
                "or choose another runtime",
            )

    def plan_restart(self, b: PlanBuilder, p: PlanInput, *, moved: bool, stopped: bool) -> None:
        service, restart = p.observed.runtime.service, p.restart
        converge_service(
            b,
            service,
            restart,
            name="containerd",
            changed=moved,
            boot_changed=moved,
            healthy=True,
            stopped=stopped,
            why_changed=f"containerd must start on its LV at {ROOT}",
            why_unhealthy="",
            why_boot=f"the running containerd must move to its LV at {ROOT} (restarted after boot)",
            why_start_after_stop="containerd was running; it starts again on its LV (after boot)",
        )

    def runtime_problems(self) -> list[str]:
        status = overlayfs_status(run(["ctr", "plugins", "ls"], check=False).stdout)
        if status != "ok":
            return [
                f"containerd's overlayfs snapshotter is {status or 'not loaded'} (ctr plugins ls)"
            ]
        return []

    def containers(self, active: tuple[str, ...]) -> tuple[str, ...]:
        from .containerd_devmapper import containerd_containers

        return containerd_containers() if UNIT in active else ()

    def managed_paths(self, spec: Spec) -> tuple[str, ...]:
        return (self.mount_unit_path, DROPIN)


PLUGIN = ContainerdOverlayfs()
