"""The DLJOB vfat disk: carries job_dir into the guest and out/ back, via mtools."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ._proc import run

JOB_LABEL = "DLJOB"
JOB_DISK_MIB = 256
_MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}


def make_job_disk(job_dir: Path, image: Path, size_mib: int = JOB_DISK_MIB) -> Path:
    """Create a sparse FAT32 image labelled DLJOB holding the contents of job_dir."""
    if not (job_dir / "job.sh").is_file():
        raise FileNotFoundError(f"{job_dir}/job.sh: the job entry point is missing")
    with image.open("wb") as fh:
        fh.truncate(size_mib * 1024 * 1024)
    run(["mkfs.vfat", "-F", "32", "-n", JOB_LABEL, image], capture=True)
    entries = sorted(job_dir.iterdir())
    if entries:
        run(["mcopy", "-s", "-Q", "-i", image, *entries, "::/"], env=_MTOOLS_ENV, capture=True)
    if not (job_dir / "out").exists():
        run(["mmd", "-i", image, "::/out"], env=_MTOOLS_ENV, capture=True)
    return image


def copy_out(image: Path, out_dir: Path) -> list[Path]:
    """Copy the job disk's out/ directory contents into out_dir; return copied top entries."""
    out_dir.mkdir(parents=True, exist_ok=True)
    listing = run(["mdir", "-b", "-i", image, "::/out"], env=_MTOOLS_ENV, capture=True,
                  check=False)
    if listing.returncode != 0 or not listing.stdout.strip():
        return []
    with tempfile.TemporaryDirectory(prefix="guestkit-out-") as tmp:
        run(["mcopy", "-s", "-n", "-Q", "-i", image, "::/out", tmp], env=_MTOOLS_ENV,
            capture=True)
        copied = []
        for entry in sorted((Path(tmp) / "out").iterdir()):
            target = out_dir / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            shutil.move(entry, target)
            copied.append(target)
    return copied


def nocloud_seed(path: Path, user_data: str, instance_id: str, hostname: str = "dl-guest") -> Path:
    """A NoCloud seed disk: vfat labelled cidata with user-data and meta-data."""
    src = path.with_suffix(".d")
    src.mkdir(parents=True, exist_ok=True)
    (src / "user-data").write_text(user_data)
    (src / "meta-data").write_text(f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n")
    with path.open("wb") as f:
        f.truncate(8 << 20)
    subprocess.run(["mkfs.vfat", "-n", "cidata", str(path)], check=True, capture_output=True)
    subprocess.run(["mcopy", "-i", str(path), str(src / "user-data"), str(src / "meta-data"),
                    "::/"], check=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})  # fmt: skip
    return path
