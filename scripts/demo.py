"""Boot a demo guest: blank disk -> `direct-lvm plan`, `apply`, `status`, docker info."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from guestkit.deb import build_deb  # noqa: E402
from guestkit.image import build_image  # noqa: E402
from guestkit.vm import Disk, blank_disk, run_job  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """\
#cloud-config
direct_lvm:
  devices: [/dev/disk/by-id/virtio-demo-data]
"""

JOB = Path(__file__).resolve().parent / "guest-jobs" / "demo.sh"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dist", default="bookworm")
    ap.add_argument("--keep", type=Path, help="keep the work directory here")
    args = ap.parse_args()
    image = build_image(args.dist)
    work = Path(tempfile.mkdtemp(prefix="direct-lvm-demo-")) if not args.keep else args.keep
    job = work / "job"
    (job / "dist").mkdir(parents=True, exist_ok=True)
    (job / "out").mkdir(exist_ok=True)
    build_deb(dest_dir=job / "dist")
    (job / "config.yaml").write_text(CONFIG)
    shutil.copy(JOB, job / "job.sh")
    disk = blank_disk(work / "data.raw", "8G")
    print(f"booting a {args.dist} guest with a blank 8 GiB disk (TCG: about 2 minutes)...",
          file=sys.stderr)  # fmt: skip
    result = run_job(image, job, out_dir=work / "out",
                     disks=[Disk(disk, serial="demo-data")])  # fmt: skip
    log = work / "out" / "job.log"
    print(log.read_text() if log.exists() else result.console_tail(80))
    print(f"\n{result.summary()}", file=sys.stderr)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
