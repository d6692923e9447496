"""Smoke checks for guestkit: `PYTHONPATH=scripts python3 -m guestkit.smoke [--dist D]`.

Runs the jobs in smoke_jobs/: a thin pool + docker job, a job failing with 3, and
optionally a QMP hot-plug job. Exits non-zero if any check fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from ._proc import log
from .image import DEFAULT_CACHE, build_image
from .model import GuestImage
from .qmp import hotplug_virtio_disk
from .vm import Disk, JobResult, blank_disk, run_job, start_job

JOBS = Path(__file__).resolve().parent / "smoke_jobs"


def lvm_docker(image: GuestImage, work: Path, kernel: Path | None) -> JobResult:
    data = blank_disk(work / "data0.raw", "2G")
    result = run_job(image, JOBS / "lvm_docker", out_dir=work / "lvm_docker",
                     disks=[Disk(data, serial="dldata0")], kernel=kernel)
    _expect(result, 0, "lvm_docker")
    return result


def exit3(image: GuestImage, work: Path, kernel: Path | None) -> JobResult:
    result = run_job(image, JOBS / "exit3", out_dir=work / "exit3", kernel=kernel)
    _expect(result, 3, "exit3")
    return result


def hotplug(image: GuestImage, work: Path, kernel: Path | None) -> JobResult:
    data = blank_disk(work / "hotplug-data0.raw", "1G")
    disk = blank_disk(work / "hotplug.raw", "1G")
    with start_job(image, JOBS / "hotplug", out_dir=work / "hotplug", qmp=True,
                   disks=[Disk(data, serial="dldata0")], kernel=kernel) as job:
        if not job.wait_for_console("DL-HOTPLUG-READY"):
            raise SystemExit("hotplug: guest never became ready")
        assert job.qmp_socket is not None
        log(f"guest ready after {job.elapsed():.1f}s, hot-plugging {disk}")
        hotplug_virtio_disk(job.qmp_socket, disk, node="hp0", serial="dlhotplug")
        result = job.wait()
    _expect(result, 0, "hotplug")
    return result


CHECKS = {"lvm_docker": lvm_docker, "exit3": exit3, "hotplug": hotplug}


def _expect(result: JobResult, verdict: int, name: str) -> None:
    status = "PASS" if result.verdict == verdict else "FAIL"
    log(f"{status} {name}: {result.summary()}")
    if result.verdict != verdict:
        log(f"console tail:\n{result.console_tail(60)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dist", default="bookworm")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--kernel", choices=("auto", "bzimage", "vmlinux"), default="auto")
    parser.add_argument("--checks", default="lvm_docker,exit3",
                        help=f"comma-separated subset of {','.join(CHECKS)}")
    parser.add_argument("--work", type=Path, help="keep outputs here (default: temp dir)")
    args = parser.parse_args(argv)
    image = build_image(args.dist, args.cache)
    kernel = {"auto": None, "bzimage": image.bzimage, "vmlinux": image.vmlinux}[args.kernel]
    work = args.work or Path(tempfile.mkdtemp(prefix="guestkit-smoke-"))
    expected = {"exit3": 3}
    failures = 0
    for name in args.checks.split(","):
        start = time.monotonic()
        result = CHECKS[name](image, work / args.dist, kernel)
        failures += result.verdict != expected.get(name, 0)
        log(f"{name}: {time.monotonic() - start:.1f}s wall, outputs in {result.out_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
