"""podman: containers-storage's graphroot, /var/lib/containers/storage (podman, buildah,
skopeo and CRI-O share it), on a dedicated thick LV with XFS (ftype=1) and the overlay
driver: what container-storage-setup makes with its container-root LV. The LV, its
mount unit (var-lib-containers-storage.mount), the takeover and the online grow are
`_lvroot`'s. podman has no daemon: its setting is /etc/containers/storage.conf, which
containers-storage reads instead of (never on top of) /usr/share/containers/storage.conf,
and which podman 4.3 (bookworm) reads with no drop-in directory. direct-lvm writes that
file when there is none (and rewrites its own); one of the user's is kept when it agrees
(graphroot ours or unset, driver overlay or unset) and refused when it does not."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from .._compat import toml_loads
from ..errors import CommandError, ConfigError
from ..model import Spec
from ..observed import RuntimeState
from ..render import render, toml_str
from ..run import run
from ..steps import Kind, PlanBuilder
from ._lvroot import LvRootPlugin, mount_unit_name, probe_root_dir, read_text
from ._systemd import RestartMode, ServiceState, dpkg_version, unit_state
from .base import PlanInput
from .table import Runtime

ROOT = "/var/lib/containers/storage"
RUNROOT = "/run/containers/storage"
STORAGE_CONF = "/etc/containers/storage.conf"
MOUNT_UNIT = mount_unit_name(ROOT)
DRIVER = "overlay"
MARK = "# Written by direct-lvm for "  # the first line of every file direct-lvm writes
# podman is a command, not a daemon; its API service is socket-activated
SOCKET, SERVICE = "podman.socket", "podman.service"
# podman-restart.service starts the containers that have a restart policy at boot
RESTART_UNIT = "podman-restart.service"


def storage_conf_conflicts(text: str) -> list[str]:
    """What in a storage.conf direct-lvm did not write would put containers-storage
    elsewhere than ROOT or on a driver other than overlay: one line each."""
    try:
        data = toml_loads(text)
    except ValueError as e:
        return [f"{STORAGE_CONF} is not valid TOML ({e})"]
    storage = data.get("storage")
    storage = storage if isinstance(storage, dict) else {}
    out = []
    root = storage.get("graphroot")
    if root not in (None, "") and posixpath.normpath(str(root)) != ROOT:
        out.append(f"{STORAGE_CONF} sets graphroot = {toml_str(root)}")
    driver = storage.get("driver")
    if driver not in (None, "", DRIVER):
        out.append(f"{STORAGE_CONF} sets driver = {toml_str(driver)}")
    return out


def info_problems(info: Mapping[str, Any]) -> list[str]:
    """What `podman info --format json` reports that differs from our storage."""
    store = info.get("store") or {}
    got = (store.get("graphRoot"), store.get("graphDriverName"))
    return (
        []
        if got == (ROOT, DRIVER)
        else [
            f"podman info: graphRoot {got[0]!r}, driver {got[1]!r}; expected {ROOT!r}, {DRIVER!r}"
        ]
    )


def parse_podman_version(text: str) -> tuple[int, int] | None:
    """'4.3.1+ds1-8+b3' or 'podman version 4.3.1' -> (4, 3)."""
    m = re.search(r"(?:^|\s)(?:\d+:)?(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


class Podman(LvRootPlugin):
    name = Runtime.PODMAN
    section = "podman"
    root = ROOT
    label = "podman"
    package = "podman"
    units = (SOCKET, SERVICE)  # the socket first: it would start the service again
    hold_units = (SOCKET, SERVICE)
    service_unit = SERVICE
    order_unit = "podman-restart"

    def probe(self, spec: Spec, *, restart: RestartMode) -> RuntimeState:
        version = dpkg_version(("podman",))
        if version is None:
            try:
                out = run(["podman", "--version"], check=False)
                version = out.stdout.strip() if out.returncode == 0 else None
            except CommandError:  # no podman binary
                version = None
        # the API socket's state (one systemctl call): a takeover stops it first
        active, _, need_reload = unit_state(SOCKET) if version else (False, (), False)
        service = ServiceState(
            SOCKET,
            installed=version is not None,
            version=parse_podman_version(version or ""),
            version_text=f"podman {version}",
            active=active,
            need_reload=need_reload,
        )
        root, foreign = probe_root_dir(spec.lv_path, ROOT)
        return RuntimeState(service=service, foreign=foreign, root=root,
                            config=read_text(STORAGE_CONF))  # fmt: skip

    def files(self, spec: Spec, state: RuntimeState) -> dict[str, str]:
        out = {self.mount_unit_path: self.mount_unit(spec, before=RESTART_UNIT)}
        if state.config is None or state.config.startswith(MARK):  # none, or ours
            out[STORAGE_CONF] = render(
                "podman-storage.conf.j2",
                vg=spec.vg,
                lv=spec.lv,
                root=ROOT,
                runroot=RUNROOT,
                mount_unit=MOUNT_UNIT,
            )
        return out

    def refuse_config(
        self, b: PlanBuilder, spec: Spec, state: RuntimeState, files: Mapping[str, str]
    ) -> None:
        if STORAGE_CONF in files or state.config is None:
            return  # none, or ours: written as it should be
        found = storage_conf_conflicts(state.config)
        if found:
            raise ConfigError(
                "containers-storage's config would keep podman's storage off "
                f"{spec.lv_path} at {ROOT}: " + "; ".join(found),
                f"remove those settings from {STORAGE_CONF} (or remove the file: "
                "direct-lvm then writes its own), or choose another runtime",
            )
        b.fact(f"{STORAGE_CONF} is not direct-lvm's and agrees (graphroot {ROOT}); kept")

    def plan_restart(self, b: PlanBuilder, p: PlanInput, *, moved: bool, stopped: bool) -> None:
        restart = p.restart
        # podman itself is a command: only its API socket, when a takeover stopped it
        if not stopped or restart is RestartMode.NEVER:
            return
        why = "podman's API socket was listening; it listens again, on the LV"
        if restart is RestartMode.BOOT:
            b.run(why, "systemctl", "start", "--no-block", SOCKET, kind=Kind.START)
        else:
            b.run(why, "systemctl", "start", SOCKET, kind=Kind.RESTART)

    def runtime_problems(self) -> list[str]:
        info = run(["podman", "info", "--format", "json"], check=False)
        if info.returncode != 0:
            return [f"podman info failed: {info.stderr.strip()}"]
        return info_problems(json.loads(info.stdout))

    def containers(self, active: tuple[str, ...]) -> tuple[str, ...]:
        # podman needs no daemon to list them; it reads the graphroot it is configured for
        r = run(["podman", "ps", "--all", "--quiet", "--no-trunc"], check=False)
        return tuple(r.stdout.split()) if r.returncode == 0 else ()

    def managed_paths(self, spec: Spec) -> tuple[str, ...]:
        return (self.mount_unit_path, STORAGE_CONF)


PLUGIN = Podman()
