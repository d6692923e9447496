"""One bake: `scripts/bake --env NAME [--out DIR] [--base IMAGE ...]`.

Builds the .deb (scripts/build-deb), makes a throw-away ssh key and the NoCloud seed
that authorizes it, runs `packer build` on packer/ (no `packer init`), and leaves in DIR
the qcow2 image, the kernel/initrd it boots with (for a base image without bootloader),
boot.json and Packer's manifest. The key is deleted with the work directory; the image no longer
authorizes it (bake-cleanup.sh).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from direct_lvm.envs import Environment, load_env
from direct_lvm.errors import DirectLvmError
from direct_lvm.spec import Runtime
from guestkit._proc import log, phase, run
from guestkit.deb import build_deb
from guestkit.vm import accel_args

from . import packer
from .base import BaseImage, build_base

ROOT = Path(__file__).resolve().parents[2]
ENVS_DIR = ROOT / "environments"
DEFAULT_OUT = ROOT / ".cache" / "bake" / "images"
BOOT_JSON = "boot.json"

COMMON_PACKAGES = (
    "lvm2",
    "dmeventd",
    "thin-provisioning-tools",
    "python3-jinja2",
    "python3-yaml",
    "python3-jsonschema",
    "python3-tomlkit",
)
DOCKER = (("docker.io",), ("docker.service", "docker.socket", "containerd.service"))
RUNTIMES: dict[Runtime, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Runtime.DOCKER_DEVICEMAPPER: DOCKER,
    Runtime.DOCKER_OVERLAY2: DOCKER,
    Runtime.CONTAINERD_DEVMAPPER: (("containerd",), ("containerd.service",)),
}


class BakeError(RuntimeError):
    """The bake could not start or did not produce an image."""


@dataclass(frozen=True)
class Artifact:
    """A baked image and how to boot it (kernel empty: the disk's own bootloader)."""

    environment: str
    disk: Path
    kernel: Path | None
    initrd: Path | None
    append: str
    bake_seconds: float
    bake_public_key: str

    @classmethod
    def load(cls, out_dir: Path) -> Artifact:
        meta = json.loads((out_dir / BOOT_JSON).read_text())
        path = {k: (out_dir / meta[k] if meta[k] else None) for k in ("kernel", "initrd")}
        return cls(
            environment=meta["environment"],
            disk=out_dir / meta["disk"],
            kernel=path["kernel"],
            initrd=path["initrd"],
            append=meta["append"],
            bake_seconds=meta["bake_seconds"],
            bake_public_key=meta["bake_public_key"],
        )

    def save(self, out_dir: Path) -> None:
        meta = {
            **asdict(self),
            "disk": self.disk.name,
            "kernel": self.kernel.name if self.kernel else "",
            "initrd": self.initrd.name if self.initrd else "",
        }
        (out_dir / BOOT_JSON).write_text(json.dumps(meta, indent=2) + "\n")


def runtime_needs(env: Environment) -> tuple[list[str], list[str]]:
    """Packages the image needs and units to enable for env's runtime."""
    packages, units = RUNTIMES[env.spec.runtime]
    return [*COMMON_PACKAGES, *packages], list(units)


def accelerator() -> str:
    """Packer's accelerator: what guestkit picks (kvm with a KVM module, else tcg)."""
    return accel_args()[1].split(",")[0]


def login_seed(work: Path, marker: str) -> tuple[Path, Path, str]:
    """A throw-away ed25519 key, and a NoCloud seed dir authorizing it for root only.

    `users: []` keeps cloud-init from creating its default user in the image.
    Returns (seed_dir, private key, public key line).
    """
    key = work / "bake_key"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", marker, "-f", key])
    public = key.with_suffix(".pub").read_text().strip()
    seed = work / "seed"
    seed.mkdir()
    (seed / "user-data").write_text(
        "#cloud-config\n"
        "# scripts/bake: Packer's login for this bake only (bake-cleanup.sh removes it).\n"
        "users: []\n"
        "disable_root: false\n"
        f"ssh_authorized_keys:\n  - {public}\n"
    )
    (seed / "meta-data").write_text(f"instance-id: {marker}\n")
    return seed, key, public


def bake(
    env_name: str,
    out: Path,
    *,
    base: BaseImage | None = None,
    envs_dir: Path = ENVS_DIR,
    deb: Path | None = None,
    packer_bin: str = "packer",
    force: bool = False,
    extra_vars: dict[str, str] | None = None,
    base_checksum: str = "none",
    disk_size: str = "",
) -> Artifact:
    """Bake an image for environment env_name into out; return the artifact."""
    env = load_env(envs_dir, env_name)
    out = out.resolve()
    if out.exists() and not force:
        raise BakeError(f"{out} exists: remove it or pass --force")
    base = base or build_base()
    packages, units = runtime_needs(env)
    work = Path(tempfile.mkdtemp(prefix=f"direct-lvm-bake-{env.name}-"))
    marker = f"direct-lvm-bake-{uuid.uuid4().hex[:12]}"
    with phase("deb"):
        deb = deb or build_deb(dest_dir=work / "dist")
    seed, key, public = login_seed(work, marker)
    variables: dict[str, str | int | Sequence[str]] = {
        "environment": env.name,
        "base_image": str(base.disk.resolve()),
        "base_image_checksum": base_checksum,
        "disk_size": disk_size,
        "kernel": str(base.kernel.resolve()) if base.kernel else "",
        "initrd": str(base.initrd.resolve()) if base.initrd else "",
        "kernel_append": base.append,
        "deb": str(deb.resolve()),
        "packages": packages,
        "enable_units": units,
        "seed_dir": str(seed),
        "ssh_private_key_file": str(key),
        "ssh_key_marker": marker,
        "accelerator": accelerator(),
        "serial_log": str(work / "console.log"),
        "output_dir": str(out),
        **(extra_vars or {}),
    }
    start = time.monotonic()
    log(
        f"baking {env.name} ({env.spec.runtime}) from {base.disk} into {out}; "
        f"under TCG this takes minutes: progress follows"
    )
    try:
        packer.build(packer_bin, variables, work, force=force)
    except packer.PackerError as e:
        raise BakeError(
            f"{e}\nserial console: {work / 'console.log'}\n"
            f"packer debug log: {work / 'packer-debug.log'}"
        ) from e
    finally:  # the key is of no use after this bake, whatever happened
        for path in (key, key.with_suffix(".pub")):
            path.unlink(missing_ok=True)
    artifact = _finish(env.name, out, base, work, public, time.monotonic() - start)
    shutil.rmtree(work)
    return artifact


def _finish(
    env: str, out: Path, base: BaseImage, work: Path, public: str, seconds: float
) -> Artifact:
    (disk,) = out.glob("*.qcow2")
    kernel = initrd = None
    if base.kernel:
        kernel = out / base.kernel.name
        shutil.copyfile(base.kernel, kernel)
    if base.kernel and base.initrd:
        initrd = out / "initrd.img"
        shutil.copyfile(base.initrd, initrd)
    logs = out / "logs"
    logs.mkdir()
    for name in ("console.log", "packer.log"):
        if (work / name).exists():
            shutil.copyfile(work / name, logs / f"bake-{name}")
    artifact = Artifact(
        environment=env,
        disk=disk,
        kernel=kernel,
        initrd=initrd,
        append=base.append if kernel else "",
        bake_seconds=round(seconds, 1),
        bake_public_key=public,
    )
    artifact.save(out)
    return artifact


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--env", required=True, help="environment name: ENVS_DIR/NAME.yaml")
    p.add_argument("--out", type=Path, help=f"artifact directory (default {DEFAULT_OUT}/ENV)")
    p.add_argument(
        "--base",
        type=Path,
        help="base disk image (default: derived from "
        "guestkit's bookworm image, built on first use)",
    )
    p.add_argument("--base-checksum", default="none", help='e.g. "sha256:..." (default none)')
    p.add_argument("--kernel", type=Path, help="boot this kernel (base without bootloader)")
    p.add_argument("--initrd", type=Path, help="initrd for --kernel")
    p.add_argument("--append", default="", help="kernel command line for --kernel")
    p.add_argument("--disk-size", default="", help='grow the disk, e.g. "8G"')
    p.add_argument("--envs-dir", type=Path, default=ENVS_DIR)
    p.add_argument("--deb", type=Path, help="use this direct-lvm .deb instead of building it")
    p.add_argument("--packer", default="packer", help="packer binary (default: packer)")
    p.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other template variable (packer/direct-lvm.pkr.hcl)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = None
    if args.base:
        base = BaseImage(disk=args.base, kernel=args.kernel, initrd=args.initrd, append=args.append)
    elif args.kernel:
        sys.exit("scripts/bake: --kernel needs --base")
    if any("=" not in v for v in args.var):
        sys.exit("scripts/bake: --var takes NAME=VALUE")
    extra = dict(v.split("=", 1) for v in args.var)
    try:
        artifact = bake(
            args.env,
            args.out or DEFAULT_OUT / args.env,
            base=base,
            envs_dir=args.envs_dir,
            deb=args.deb,
            packer_bin=args.packer,
            force=args.force,
            extra_vars=extra,
            base_checksum=args.base_checksum,
            disk_size=args.disk_size,
        )
    except DirectLvmError as e:
        print(f"scripts/bake: {e}", file=sys.stderr)
        return e.exit_code
    except BakeError as e:
        print(f"scripts/bake: FAILED\n{e}", file=sys.stderr)
        return 1
    log(f"baked {artifact.environment} in {artifact.bake_seconds:.0f}s")
    print(artifact.disk)
    return 0
