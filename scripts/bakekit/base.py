"""The base image `scripts/bake` starts from when no --base is given.

No cloud image can be downloaded here, so the base is guestkit's debootstrapped bookworm
image (cloud-init, ssh, lvm2, docker.io) made into what a stock cloud image is by one
boot of scripts/guest-jobs/bake-base.sh, then flattened into one raw disk. It has no
bootloader: it boots with the kernel and initrd next to it (BaseImage.kernel/initrd).
Cached under .cache/bake/base-<dist>/, keyed by guestkit's image stamp and the job.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from guestkit._proc import file_lock, log, phase, run
from guestkit.image import build_image
from guestkit.model import GuestImage
from guestkit.vm import run_job

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = ROOT / ".cache" / "bake"
JOB = ROOT / "scripts" / "guest-jobs" / "bake-base.sh"
# guestkit's image has a bare ext4 root labelled `root` (no partition table);
# no_timer_check as guestkit boots it (TCG on a loaded host can fail that check: a panic).
CMDLINE = "root=LABEL=root rw console=ttyS0,115200 no_timer_check"
STAMP = "base.json"
JOB_TIMEOUT_S = 900


@dataclass(frozen=True)
class BaseImage:
    """A base disk image; kernel/initrd/append only when it has no bootloader."""

    disk: Path
    kernel: Path | None = None
    initrd: Path | None = None
    append: str = ""


def build_base(dist: str = "bookworm", cache: Path = DEFAULT_CACHE) -> BaseImage:
    """Return the cached base image for dist, deriving it from guestkit's if stale."""
    image = build_image(dist)
    stamp = _stamp(image.stamp)
    final = cache.resolve() / f"base-{dist}"
    final.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(final.parent / f".base-{dist}.lock"):
        if _read_stamp(final) != stamp:
            with phase(f"derive the {dist} base image"):
                _derive(image, final, stamp)
        else:
            log(f"reusing the base image in {final}")
    meta = json.loads((final / STAMP).read_text())
    return BaseImage(
        disk=final / "base.raw",
        kernel=final / meta["kernel"],
        initrd=final / "initrd.img",
        append=CMDLINE,
    )


def _stamp(image_stamp: str) -> str:
    digest = hashlib.sha256(image_stamp.encode())
    for source in (JOB, Path(__file__).resolve()):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _read_stamp(directory: Path) -> str | None:
    try:
        return str(json.loads((directory / STAMP).read_text())["stamp"])
    except (FileNotFoundError, KeyError, ValueError):
        return None



def _derive(image: GuestImage, final: Path, stamp: str) -> None:
    work = Path(tempfile.mkdtemp(prefix=".base-", dir=final.parent))
    try:
        job = work / "job"
        job.mkdir()
        shutil.copy(JOB, job / "job.sh")
        overlay = work / "overlay.qcow2"
        result = run_job(
            image, job, out_dir=work / "out", root_overlay=overlay, timeout=JOB_TIMEOUT_S
        )
        if not result.ok:
            raise RuntimeError(
                f"bake-base job failed: {result.summary()}\n{result.console_tail(60)}"
            )
        build = work / "base"
        build.mkdir()
        # Flatten root.raw + the job's overlay into one sparse raw disk; the job ends
        # without unmounting / (isa-debug-exit), so replay the journal now.
        run(["qemu-img", "convert", "-O", "raw", overlay, build / "base.raw"])
        fsck = run(["e2fsck", "-f", "-y", build / "base.raw"], capture=True, check=False)
        if fsck.returncode not in (0, 1):
            raise RuntimeError(f"e2fsck of the base image exited {fsck.returncode}")
        shutil.copyfile(image.kernel, build / image.kernel.name)
        shutil.copyfile(image.initrd, build / "initrd.img")
        meta = {"stamp": stamp, "kernel": image.kernel.name, "source": str(image.root)}
        (build / STAMP).write_text(json.dumps(meta, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        build.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
