"""containerd-devmapper: containerd's devmapper snapshotter on the thin pool. Which
containerd is installed, which config version it reads, and how our fragment joins its
config (an `imports` entry; the rest of config.toml is left as it is, and reset takes
only our entry out again). Parsing and merging are pure; probing reads only."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .._compat import toml_loads
from ..errors import CommandError, ConfigError
from ..model import Spec
from ..observed import RuntimeState
from ..pool import profile_path, verify_pool
from ..probe import Mount
from ..render import render, toml_str
from ..run import run
from ..steps import PlanBuilder
from ..units import format_size, parse_size
from ._systemd import (
    RestartMode,
    ServiceState,
    converge_service,
    daemon_reload,
    dpkg_version,
    find_unit,
    unit_state,
)
from .base import PlanInput, Plugin, ResetEdit, ResetState, VerifyInput, read_file, write_changed
from .table import Runtime

CONTAINERD_UNIT = "containerd.service"
CONFIG = "/etc/containerd/config.toml"
FRAGMENT = "/etc/containerd/conf.d/direct-lvm.toml"
DROPIN = "/etc/systemd/system/containerd.service.d/direct-lvm.conf"
SNAPSHOTTER = "io.containerd.snapshotter.v1.devmapper"
# Packages that ship containerd: Debian's, then Docker's.
PACKAGES = ("containerd", "containerd.io")
# fs_type and fs_options: present in containerd 1.6.20 (config dump); older versions ignore
# unknown keys silently.
FS_KEYS_SINCE = (1, 6)


@dataclass(frozen=True)
class Containerd:
    """containerd's devmapper snapshotter options (pool_name is derived, never set)."""

    root_path: str = "/var/lib/containerd/io.containerd.snapshotter.v1.devmapper"
    base_image_size: int = 10 * 1024**3  # bytes
    async_remove: bool = False
    discard_blocks: bool = True
    fs_type: str = "ext4"
    fs_options: str = ""


def options(spec: Spec) -> Containerd:
    """The `containerd:` section of a containerd-devmapper spec."""
    opts = spec.options
    return opts if isinstance(opts, Containerd) else Containerd()


def parse_version(text: str) -> tuple[int, int] | None:
    """'1.6.20~ds1-1+b1' or 'containerd github.com/containerd/containerd v1.7.24 ...'
    -> (1, 6) / (1, 7)."""
    m = re.search(r"(?:^|\s|v|:)(\d+)\.(\d+)\.\d+", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def config_version(version: tuple[int, int] | None) -> int:
    """containerd 1.x reads config version 2; 2.x reads version 3 (and migrates 2)."""
    return 3 if version and version[0] >= 2 else 2


def probe_containerd(*, service_state: bool) -> ServiceState:
    """The containerd unit, its version (dpkg's database, else `containerd --version`),
    and with service_state whether it runs."""
    unit = find_unit(CONTAINERD_UNIT)
    found = dpkg_version(PACKAGES)
    version_text = f"containerd {found}" if found else ""
    if not version_text:
        try:
            ver = run(["containerd", "--version"], check=False)
            version_text = ver.stdout.strip() if ver.returncode == 0 else ""
        except CommandError:
            version_text = ""
    installed = unit is not None and bool(version_text)
    state = ServiceState(CONTAINERD_UNIT, installed, parse_version(version_text), version_text)
    if state.installed and service_state:
        active, cmdline, need_reload = unit_state(CONTAINERD_UNIT)
        state = replace(state, active=active, cmdline=cmdline, need_reload=need_reload)
    return state


def check(spec: Spec, state: ServiceState) -> None:
    """Version gate for containerd-devmapper."""
    c = options(spec)
    if not state.installed:
        raise ConfigError(
            "runtime containerd-devmapper needs containerd, but it is not installed "
            f"(no {CONTAINERD_UNIT} or no containerd package/binary)",
            "install containerd (apt-get install containerd) or choose another runtime",
        )
    if (c.fs_type != "ext4" or c.fs_options) and (state.version or (0, 0)) < FS_KEYS_SINCE:
        raise ConfigError(
            f"containerd.fs_type/fs_options need containerd >= 1.6; the installed "
            f"{state.version_text!r} would ignore them",
            "remove containerd.fs_type and containerd.fs_options, or upgrade containerd",
        )


def plugin_status(ctr_plugins: str) -> str | None:
    """The devmapper snapshotter's STATUS in `ctr plugins ls` output (None if absent)."""
    for line in ctr_plugins.splitlines():
        cols = line.split()
        if len(cols) >= 3 and cols[0] == "io.containerd.snapshotter.v1" and cols[1] == "devmapper":
            return cols[-1]
    return None


def devmapper_status() -> str | None:
    r = run(["ctr", "plugins", "ls"], check=False)
    return plugin_status(r.stdout) if r.returncode == 0 else None


def fragment(spec: Spec, version: int) -> str:
    c = options(spec)
    return render(
        "containerd-devmapper.toml.j2",
        vg=spec.vg,
        pool=spec.pool,
        version=version,
        plugin=SNAPSHOTTER,
        pool_name=spec.pool_dm_name,
        root_path=c.root_path,
        base_image_size=str(c.base_image_size),  # bytes: unambiguous to go-units
        async_remove=c.async_remove,
        discard_blocks=c.discard_blocks,
        fs_type="" if c.fs_type == "ext4" else c.fs_type,
        fs_options=c.fs_options,
    )


def dropin(spec: Spec) -> str:
    return render(
        "containerd-devmapper.conf.j2", vg=spec.vg, pool=spec.pool, pool_path=spec.pool_path
    )


def _parse(text: str) -> dict[str, Any]:
    try:
        return toml_loads(text)
    except ValueError as e:
        raise ConfigError(f"{CONFIG} is not valid TOML: {e}", f"fix {CONFIG}") from None


def main_config(current: str | None, installed: tuple[int, int] | None) -> tuple[str, int]:
    """(the config.toml containerd should have, the config version our fragment uses).
    Missing: a minimal one with the version and our import. Present: the same text with
    our path added to its top-level `imports`; refused when it configures devmapper itself."""
    if current is None or not current.strip():
        version = config_version(installed)
        return render("containerd-config.toml.j2", version=version, imports=[FRAGMENT]), version
    data = _parse(current)
    version = data.get("version", 1)
    if not isinstance(version, int) or version < 2:
        raise ConfigError(
            f"{CONFIG} is a version 1 config (no `version = 2`); its plugin names differ "
            "from the version 2 fragment direct-lvm imports",
            f"convert it: containerd config migrate > /tmp/c.toml (containerd >= 1.7), or "
            f"add `version = 2` and rename its plugin sections, or remove {CONFIG}",
        )
    plugins = data.get("plugins") or {}
    if isinstance(plugins, dict) and (SNAPSHOTTER in plugins or "devmapper" in plugins):
        raise ConfigError(
            f"{CONFIG} configures the devmapper snapshotter itself ([plugins.{SNAPSHOTTER!r}]); "
            f"direct-lvm writes that section to {FRAGMENT}",
            f"remove the devmapper section from {CONFIG} (set its options under "
            "direct_lvm.containerd instead)",
        )
    disabled = data.get("disabled_plugins") or []
    if SNAPSHOTTER in disabled or "devmapper" in disabled:
        raise ConfigError(
            f"{CONFIG} lists the devmapper snapshotter in disabled_plugins",
            f"remove {SNAPSHOTTER} from disabled_plugins in {CONFIG}",
        )
    if FRAGMENT in _imports(data):
        return current, version
    return add_import(current, FRAGMENT), version


# ------------------------------------------------------------------ the imports list
# Read and edited with tomlkit, which keeps comments and layout. Every edit is checked by
# parsing the result again: the data must be the old data with only `imports` changed.


def _note(path: str) -> tuple[str, ...]:
    """What add_import writes above an `imports` key it adds (remove_import takes it away)."""
    what = " (its devmapper snapshotter config)" if path == FRAGMENT else ""
    return (f"imports: direct-lvm added {path}{what};", "nothing else in this file was changed")


def _imports(data: dict[str, Any]) -> list[Any]:
    imports = data.get("imports", [])
    if not isinstance(imports, list):
        raise ConfigError(
            f"{CONFIG}: imports is not a list ({imports!r})",
            f"make imports a list of paths in {CONFIG}",
        )
    return imports


def _checked(new: str, want: dict[str, Any]) -> bool:
    try:
        return toml_loads(new) == want
    except ValueError:
        return False


def _cannot(change: str) -> ConfigError:
    return ConfigError(
        f"cannot {change} the imports of {CONFIG} without rewriting the rest of it",
        f"{change} its top-level imports list yourself",
    )


def add_import(text: str, path: str) -> str:
    """containerd's config text with `path` appended to its top-level `imports` (the key
    added at the top, under a two-line note, when there is none); everything else kept as
    it is. Unchanged when path is already imported. ConfigError when the text is not
    TOML, `imports` is not a list, or the edit would change anything else."""
    import tomlkit

    data = _parse(text)
    imports = _imports(data)
    if path in imports:
        return text
    want = {**data, "imports": [*imports, path]}
    if "imports" not in data:
        head = tomlkit.document()
        for line in _note(path):
            head.add(tomlkit.comment(line))
        head.add("imports", [path])
        new = tomlkit.dumps(head) + text
        if _checked(new, want):
            return new
        raise _cannot(f"add {toml_str(path)} to")
    doc = tomlkit.parse(text)
    array = doc["imports"]
    array.append(path)  # keeps the array's comments and layout
    new = tomlkit.dumps(doc)
    if _checked(new, want):
        return new
    # tomlkit before 0.7 (bullseye's 0.6) cannot append to a multi-line array: write the
    # array anew, one path a line (its comments go, the rest of the file stays)
    doc = tomlkit.parse(text)
    fresh = tomlkit.array()
    for p in want["imports"]:
        fresh.append(p)
    doc["imports"] = fresh.multiline(True)
    new = tomlkit.dumps(doc)
    if _checked(new, want):
        return new
    raise _cannot(f"add {toml_str(path)} to")


def remove_import(text: str, path: str) -> str:
    """containerd's config text without `path` in its top-level `imports`; the key goes
    too (with the note add_import wrote) when add_import had added it. Unchanged when
    path is not imported. ConfigError as for add_import."""
    import tomlkit

    data = _parse(text)
    imports = _imports(data)
    if path not in imports:
        return text
    rest = [p for p in imports if p != path]
    note = "".join(f"# {line}\n" for line in _note(path))
    ours = not rest and note in text  # add_import added the key
    want = {k: v for k, v in data.items() if k != "imports" or not ours}
    if not ours:
        want["imports"] = rest
    doc = tomlkit.parse(text)
    if ours:
        del doc["imports"]
        new = tomlkit.dumps(doc).replace(note, "", 1)
    else:
        array = doc["imports"]
        for i in reversed(range(len(array))):
            if array[i] == path:
                del array[i]
        new = tomlkit.dumps(doc)
    if _checked(new, want):
        return new
    raise _cannot(f"remove {toml_str(path)} from")


# ------------------------------------------------------------------ reset


def without_import(text: str) -> str | None:
    """containerd's config.toml with our import taken out; None when direct-lvm wrote the
    whole file (there was none), so it goes. Raises ConfigError when the entry cannot be
    taken out without rewriting the rest."""
    data = _parse(text)
    imports = data.get("imports") or []
    if (
        text.startswith("# Written by direct-lvm: there was no config.toml")
        and set(data) == {"version", "imports"}
        and imports == [FRAGMENT]
    ):
        return None
    try:
        return remove_import(text, FRAGMENT)
    except ConfigError as e:
        raise ConfigError(e.message, f"{e.hint}, then run reset again") from None


def snap_devices(dmsetup_table: str, pool_dm_name: str) -> tuple[str, ...]:
    """containerd's devmapper snapshotter names its thin devices <pool_name>-snap-<id>
    (`dmsetup table` lines: "name: start length thin pool-dev id")."""
    out = []
    for line in dmsetup_table.splitlines():
        name, _, table = line.partition(": ")
        if name.startswith(f"{pool_dm_name}-snap-") and table.split()[2:3] == ["thin"]:
            out.append(name)
    return tuple(sorted(set(out)))


def containerd_containers() -> tuple[str, ...]:
    """Containers in every containerd namespace but docker's own (moby: docker's storage,
    not the pool)."""
    r = run(["ctr", "namespaces", "ls", "-q"], check=False)
    out: list[str] = []
    for ns in r.stdout.split() if r.returncode == 0 else ["k8s.io", "default"]:
        if ns == "moby":
            continue
        c = run(["ctr", "-n", ns, "containers", "ls", "-q"], check=False)
        out += [f"{ns}/{cid}" for cid in c.stdout.split()] if c.returncode == 0 else []
    return tuple(out)


# ------------------------------------------------------------------ the plugin


class ContainerdDevmapper(Plugin):
    name = Runtime.CONTAINERD_DEVMAPPER
    section = "containerd"
    units = (CONTAINERD_UNIT,)
    hold_units = (CONTAINERD_UNIT,)
    service_unit = CONTAINERD_UNIT
    order_unit = "containerd"

    def parse_section(self, raw: Mapping[str, Any]) -> object:
        root = raw["root_path"]
        if posixpath.normpath(root) != root or root == "/":
            raise ConfigError(
                f"direct_lvm.containerd.root_path: {root!r} is not a normalized directory path",
                f"write it as {posixpath.normpath(root)!r} (and not /)",
            )
        return Containerd(
            root_path=root,
            base_image_size=parse_size(raw["base_image_size"]),
            async_remove=raw["async_remove"],
            discard_blocks=raw["discard_blocks"],
            fs_type=raw["fs_type"],
            fs_options=raw["fs_options"],
        )

    def section_mapping(self, spec: Spec) -> dict[str, Any]:
        c = options(spec)
        return {
            "containerd": {
                "root_path": c.root_path,
                "base_image_size": format_size(c.base_image_size),
                "async_remove": c.async_remove,
                "discard_blocks": c.discard_blocks,
                "fs_type": c.fs_type,
                "fs_options": c.fs_options,
            }
        }

    def probe(self, spec: Spec, *, restart: RestartMode) -> RuntimeState:
        ctd = probe_containerd(service_state=restart is not RestartMode.NEVER)
        check(spec, ctd)  # refused before its config and plugins are read
        health = devmapper_status() if ctd.active else None
        return RuntimeState(service=ctd, config=read_file(CONFIG), health=health)

    def check(self, spec: Spec, state: RuntimeState) -> None:
        check(spec, state.service or ServiceState(CONTAINERD_UNIT, installed=False))

    def files(self, spec: Spec, state: RuntimeState) -> dict[str, str]:
        ctd = state.service
        main, version = main_config(state.config, ctd.version if ctd is not None else None)
        return {FRAGMENT: fragment(spec, version), CONFIG: main, DROPIN: dropin(spec)}

    def plan(self, b: PlanBuilder, p: PlanInput) -> None:
        observed, files, restart = p.observed, p.files, p.restart
        ct = observed.runtime.service
        health = observed.runtime.health
        changed = write_changed(b, observed, files, "containerd's devmapper snapshotter")
        daemon_reload(b, DROPIN in changed, ct, "systemd must read the new drop-in")
        converge_service(
            b,
            ct,
            restart,
            name="containerd",
            changed=bool(changed),
            boot_changed=bool(changed),
            healthy=health == "ok",
            why_changed="containerd must read its new config",
            why_unhealthy=f"containerd's devmapper snapshotter is {health or 'absent'}",
            # containerd is ordered after cloud-init (image-setup): never start it here
            why_boot="the running containerd must load the devmapper snapshotter (after boot)",
        )

    def verify(self, v: VerifyInput) -> tuple[str, ...]:
        spec, lvm, restarted = v.spec, v.lvm, v.restarted

        def on_containerd() -> list[str]:
            status = devmapper_status()
            if status != "ok":
                return [
                    f"containerd's devmapper snapshotter is {status or 'not loaded'} "
                    "(ctr plugins ls)"
                ]
            return []

        return verify_pool(spec, lvm, on_containerd if restarted else None)

    def managed_paths(self, spec: Spec) -> tuple[str, ...]:
        return (profile_path(spec), FRAGMENT, DROPIN, CONFIG)

    def reset_probe(
        self, spec: Spec, active: tuple[str, ...], mounts: Sequence[Mount]
    ) -> ResetState:
        containers = containerd_containers() if active else ()
        table = run(["dmsetup", "table"], check=False).stdout
        root = options(spec).root_path
        return ResetState(
            containers=containers,
            snap_devices=snap_devices(table, spec.pool_dm_name),
            pool_state=root if os.path.isdir(root) else "",
        )

    def reset_edit(
        self, path: str, text: str, spec: Spec, files: Mapping[str, str | None]
    ) -> ResetEdit | None:
        if path != CONFIG:
            return None
        if FRAGMENT not in text:
            return ResetEdit(keep=True)
        new = without_import(text)
        return ResetEdit(
            content=new,
            reason=f"{path}: only direct-lvm's import of {FRAGMENT} goes; the rest is kept",
        )


PLUGIN = ContainerdDevmapper()
