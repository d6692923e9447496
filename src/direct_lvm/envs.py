"""Per-environment layouts: one folder of YAML files, each `description` + `direct_lvm`,
validated by the same schema as any config, rendered into every artifact for review."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from . import core, spec
from ._compat import StrEnum
from .configfile import load_yaml, read_config
from .errors import ConfigError
from .image import order_dropin
from .observed import RuntimeState
from .render import render
from .runtimes import get as runtime_plugin
from .runtimes._systemd import ServiceState

# What a rendered drop-in assumes the vendor unit runs: Debian's docker.io. On a host,
# apply derives it from the installed docker.service instead.
DEBIAN_DOCKER_EXEC_START = "/usr/sbin/dockerd -H fd:// $DOCKER_OPTS"
ENV_KEYS = ("description", "direct_lvm")


@dataclass(frozen=True)
class Environment:
    name: str
    description: str
    spec: spec.Spec


def load_env(envs_dir: Path, name: str) -> Environment:
    path = envs_dir / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in envs_dir.glob("*.yaml"))
        raise ConfigError(
            f"no environment {name!r} in {envs_dir}",
            f"use one of: {', '.join(known) or '(none found)'}, or --envs-dir",
        )
    # the same reader as a config: size cap, UTF-8, no duplicate keys, errors with lines
    document = load_yaml(read_config(path), str(path))
    data = document.data
    if not isinstance(data, dict) or "direct_lvm" not in data:
        raise ConfigError(
            f"{path}: expected a mapping with a direct_lvm key",
            "see environments/dev.yaml for the format",
        )
    unknown = sorted(set(data) - set(ENV_KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(unknown)}",
            f"an environment has only: {', '.join(ENV_KEYS)}",
        )
    mapping = spec.extract_mapping(data, str(path), document.node)
    return Environment(name, str(data.get("description", "")), spec.from_mapping(mapping))


class Carrier(StrEnum):
    KEY = "key"  # the direct_lvm cloud-config key (degraded boots on cloud-init >= 23.4)
    FILE = "file"  # write_files of /etc/direct-lvm/config.yaml (the default: every version)


# The file carrier's part merges into earlier user-data parts by appending lists (its
# write_files entry joins theirs instead of replacing them): cloud-init's documented
# mergers, in the string form every version from 20.4 to 25.x reads. cloud-init applies
# the mergers of the part being merged in, so a LATER part without merge_how of its own
# still replaces lists (cloud-init's default): put this part last, or give the others
# the same merge_how.
MERGE_HOW = "list(append)+dict(recurse_array)+str()"


def user_data(env: Environment, carrier: Carrier = Carrier.FILE) -> str:
    config = spec.to_mapping(env.spec)
    if carrier is Carrier.KEY:
        return render("user-data.yaml.j2", env=env.name, description=env.description, config=config)
    content = "# direct-lvm config, written by cloud-init's write_files\n" + yaml.safe_dump(
        {spec.CONFIG_KEY: config}, sort_keys=False
    )
    return render(
        "user-data-file.yaml.j2",
        env=env.name,
        description=env.description,
        path=core.BOOT_CONFIG_FILE,
        content=content,
        merge_how=MERGE_HOW,
    )


def artifacts(
    env: Environment,
    carrier: Carrier = Carrier.FILE,
    docker_exec_start: str = DEBIAN_DOCKER_EXEC_START,
) -> dict[str, str]:
    """Relative path -> content of everything an instance of this environment gets."""
    s = env.spec
    out = {"user-data.yaml": user_data(env, carrier)}
    rt = runtime_plugin(s.runtime)
    unit = ServiceState(rt.service_unit, True, exec_start=docker_exec_start)
    for path, text in core.desired_files(s, RuntimeState(service=unit)).items():
        out[path.lstrip("/")] = text
    out[order_dropin(rt.order_unit)] = render(
        "docker-order.conf.j2", unit=rt.order_unit, after="cloud-init.service"
    )
    return out


def write_artifacts(files: dict[str, str], out: Path) -> list[Path]:
    written = []
    for rel, text in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def env_from_config(path: Path) -> Environment:
    return Environment(path.stem, f"from {path.name}", spec.load_file(path))
