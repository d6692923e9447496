"""Issue: core engine proven on real LVM. One guest boot runs in_guest/test_core.py;
each in-guest test is reported here under its own name."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from guestkit.vm import Disk, blank_disk

from .harness import in_guest_tests, run_suites

pytestmark = pytest.mark.guest


def ext4_disk(path: Path, content: bytes) -> str:
    """A 64 MiB disk holding an ext4 filesystem with one file; returns the file's sha256."""
    src = path.with_suffix(".d")
    src.mkdir()
    (src / "precious.txt").write_bytes(content)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "precious", "-d", str(src), str(path), "64M"],
                   check=True)  # fmt: skip
    return hashlib.sha256(content).hexdigest()


@pytest.fixture(scope="module")
def core_run(guest_image, wheel, tmp_path_factory):
    work = tmp_path_factory.mktemp("core")
    data = blank_disk(work / "data1.raw", "4G")
    sha = ext4_disk(work / "ext4.raw", b"customer data that must survive\n" * 1000)
    return run_suites(
        guest_image, wheel, work, ["test_core"],
        disks=[Disk(data, serial="dl-data1"), Disk(work / "ext4.raw", serial="dl-ext4")],
        facts={"precious_sha256": sha},
    )  # fmt: skip


@pytest.mark.parametrize("name", in_guest_tests("test_core"))
def test_core(core_run, name):
    core_run.check(name)


def test_guest_verdict_is_the_in_guest_pytest_status(core_run):
    """The guest reports its own verdict; it must agree with the per-test outcomes."""
    failed = [n for n, (o, _) in core_run.outcomes.items() if o != "passed"]
    assert core_run.result.verdict == (1 if failed else 0), core_run.result.summary()
