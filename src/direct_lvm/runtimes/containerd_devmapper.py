"""containerd's devmapper snapshotter: which containerd is installed, which config version
it reads, and how our fragment joins its config (an `imports` entry; the rest of
config.toml is left as it is). Parsing and merging are pure; probing reads only."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from ._compat import toml_loads
from .errors import CommandError, ConfigError
from .model import Spec
from .render import render, toml_str
from .run import run
from .runtime import ServiceState, find_unit, parse_dpkg_versions
from .runtimes._systemd import unit_state

CONTAINERD_UNIT = "containerd.service"
CONFIG = "/etc/containerd/config.toml"
FRAGMENT = "/etc/containerd/conf.d/direct-lvm.toml"
DROPIN = "/etc/systemd/system/containerd.service.d/direct-lvm.conf"
PLUGIN = "io.containerd.snapshotter.v1.devmapper"
# Packages that ship containerd: Debian's, then Docker's.
PACKAGES = ("containerd", "containerd.io")
# fs_type and fs_options: present in containerd 1.6.20 (config dump); older versions ignore
# unknown keys silently.
FS_KEYS_SINCE = (1, 6)


def parse_version(text: str) -> tuple[int, int] | None:
    """'1.6.20~ds1-1+b1' or 'containerd github.com/containerd/containerd v1.7.24 ...'
    -> (1, 6) / (1, 7)."""
    m = re.search(r"(?:^|\s|v|:)(\d+)\.(\d+)\.\d+", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def config_version(version: tuple[int, int] | None) -> int:
    """containerd 1.x reads config version 2; 2.x reads version 3 (and migrates 2)."""
    return 3 if version and version[0] >= 2 else 2


def probe(*, service_state: bool) -> ServiceState:
    """The containerd unit, its version (dpkg's database, else `containerd --version`),
    and with service_state whether it runs."""
    unit = find_unit(CONTAINERD_UNIT)
    version_text = ""
    try:
        pkg = run(["dpkg-query", "-W", "-f", "${Version} ${db:Status-Status}\n", *PACKAGES],
                  check=False)  # fmt: skip
        found = parse_dpkg_versions(pkg.stdout)
        version_text = f"containerd {found}" if found else ""
    except CommandError:  # no dpkg on this distribution
        pass
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
    if not state.installed:
        raise ConfigError(
            "runtime containerd-devmapper needs containerd, but it is not installed "
            f"(no {CONTAINERD_UNIT} or no containerd package/binary)",
            "install containerd (apt-get install containerd) or choose another runtime",
        )
    c = spec.containerd
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
    c = spec.containerd
    return render(
        "containerd-devmapper.toml.j2",
        vg=spec.vg,
        pool=spec.pool,
        version=version,
        plugin=PLUGIN,
        pool_name=spec.pool_dm_name,
        root_path=c.root_path,
        base_image_size=str(c.base_image_size),  # bytes: unambiguous to go-units
        async_remove=c.async_remove,
        discard_blocks=c.discard_blocks,
        fs_type="" if c.fs_type == "ext4" else c.fs_type,
        fs_options=c.fs_options,
    )


def dropin(spec: Spec) -> str:
    return render("containerd-devmapper.conf.j2", vg=spec.vg, pool=spec.pool,
                  pool_path=spec.pool_path)  # fmt: skip


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
    if isinstance(plugins, dict) and (PLUGIN in plugins or "devmapper" in plugins):
        raise ConfigError(
            f"{CONFIG} configures the devmapper snapshotter itself ([plugins.{PLUGIN!r}]); "
            f"direct-lvm writes that section to {FRAGMENT}",
            f"remove the devmapper section from {CONFIG} (set its options under "
            "direct_lvm.containerd instead)",
        )
    disabled = data.get("disabled_plugins") or []
    if PLUGIN in disabled or "devmapper" in disabled:
        raise ConfigError(f"{CONFIG} lists the devmapper snapshotter in disabled_plugins",
                          f"remove {PLUGIN} from disabled_plugins in {CONFIG}")  # fmt: skip
    imports = data.get("imports", [])
    if not isinstance(imports, list):
        raise ConfigError(f"{CONFIG}: imports is not a list", f"fix {CONFIG}")
    if FRAGMENT in imports:
        return current, version
    new = _with_import(current, imports)
    if new is None or _parse(new) != {**data, "imports": [*imports, FRAGMENT]}:
        raise ConfigError(
            f"cannot add {FRAGMENT} to the imports of {CONFIG} without rewriting it",
            f"add {toml_str(FRAGMENT)} to its top-level imports list yourself",
        )
    return new, version


_HEADER = re.compile(r"^[ \t]*\[", re.M)
_IMPORTS = re.compile(r"^[ \t]*imports[ \t]*=[ \t]*\[", re.M)


def _with_import(text: str, imports: list[str]) -> str | None:
    """Text with FRAGMENT appended to the top-level imports array (added if absent)."""
    top_end = m.start() if (m := _HEADER.search(text)) else len(text)
    entries = ", ".join(toml_str(p) for p in [*imports, FRAGMENT])
    found = _IMPORTS.search(text, 0, top_end)
    if found is None:
        line = (
            f"# imports: direct-lvm added {FRAGMENT} (its devmapper snapshotter config);\n"
            f"# nothing else in this file was changed\nimports = [{entries}]\n"
        )
        return line + text
    end = _array_end(text, found.end() - 1)
    if end is None:
        return None
    return text[: found.start()] + f"imports = [{entries}]" + text[end:]


def _array_end(text: str, start: int) -> int | None:
    """Index just past the ']' that closes the array opened at text[start]."""
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c in "\"'":
            close = text.find(c, i + 1) if c == "'" else _basic_end(text, i + 1)
            if close < 0:
                return None
            i = close
        elif c == "#":
            nl = text.find("\n", i)
            i = len(text) if nl < 0 else nl
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _basic_end(text: str, i: int) -> int:
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    return -1
