"""Hand procedure vs `direct-lvm apply` on identical blank disks, in one guest boot.

Rounds alternate (manual, apply, manual, apply) on fresh 4 GiB disks so that a slow
moment of the machine hits both sides. Both sides end with the pool made, the profile
attached, monitoring checked, the docker drop-in written and systemd reloaded; neither
restarts docker. Prints seconds per run and the ratios apply/manual and no-op/manual."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from guestkit.deb import build_deb  # noqa: E402
from guestkit.image import build_image  # noqa: E402
from guestkit.vm import Disk, blank_disk, run_job  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

JOB = Path(__file__).resolve().parent / "guest-jobs" / "bench.sh"


def lvm_calls(log: Path) -> int:
    tools = ("lvm ", "pvcreate", "vgcreate", "lvcreate", "lvconvert", "lvchange", "lvs ", "vgs ",
             "pvs ")  # fmt: skip
    return sum(
        1 for line in log.read_text().splitlines()
        if "] + " in line and line.split("] + ", 1)[1].startswith(tools)
    )  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dist", default="bookworm")
    args = ap.parse_args()
    image = build_image(args.dist)
    work = Path(tempfile.mkdtemp(prefix="direct-lvm-bench-"))
    job = work / "job"
    (job / "dist").mkdir(parents=True)
    (job / "out").mkdir()
    build_deb(dest_dir=job / "dist")
    shutil.copy(JOB, job / "job.sh")
    disks = [Disk(blank_disk(work / f"d{i}.raw", "4G"), serial=f"bench{i}") for i in range(4)]
    result = run_job(image, job, out_dir=work / "out", disks=disks)
    out = work / "out"
    if not result.ok or not (out / "bench.json").exists():
        print(f"benchmark guest failed: {result.summary()}", file=sys.stderr)
        for log in sorted(out.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}", file=sys.stderr)
        print(result.console_tail(60), file=sys.stderr)
        return 1
    rows = json.loads((out / "bench.json").read_text())
    by: dict[str, list[float]] = {}
    for r in rows:
        by.setdefault(r["side"], []).append(float(r["seconds"]))
    for side, secs in by.items():
        print(f"{side:14} " + "  ".join(f"{s:6.2f}s" for s in secs))
    manual = statistics.median(by["manual"])
    apply_ = statistics.median(by["apply"])
    noop = statistics.median(by["noop"])
    print(f"lvm calls: manual 7, apply {lvm_calls(out / 'apply1.log')}, "
          f"no-op {lvm_calls(out / 'noop1.log')}")  # fmt: skip
    print(f"ratio apply/manual: {apply_ / manual:.2f}  (target <= 0.80)")
    print(f"ratio no-op/manual: {noop / manual:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
