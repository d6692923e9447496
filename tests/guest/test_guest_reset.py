"""Issue 12 item 4: `direct-lvm reset`. One bookworm boot runs in_guest/test_reset.py
with two blank disks (ours) and a foreign ext4 disk whose whole-device hash must not
change; each in-guest test is reported here under its own name."""

from __future__ import annotations

import pytest

from guestkit.vm import Disk, blank_disk

from .harness import in_guest_tests, run_suites
from .test_guest_core import ext4_disk

pytestmark = pytest.mark.guest


@pytest.fixture(scope="module")
def reset_run(guest_image, deb, tmp_path_factory):
    work = tmp_path_factory.mktemp("reset")
    ext4_disk(work / "f.raw", b"someone else's data, never touched by reset\n" * 1000)
    disks = [Disk(blank_disk(work / f"{n}.raw", "2G"), serial=f"dl-r{n}") for n in "ab"]
    disks.append(Disk(work / "f.raw", serial="dl-rf"))
    return run_suites(guest_image, deb, work, ["test_reset"], disks=disks)


@pytest.mark.parametrize("name", in_guest_tests("test_reset"))
def test_reset(reset_run, name):
    reset_run.check(name)


def test_guest_verdict_is_the_in_guest_pytest_status(reset_run):
    print(f"reset boot: {reset_run.result.summary()}")  # the boot's time, with -rP
    failed = [n for n, (o, _) in reset_run.outcomes.items() if o != "passed"]
    assert reset_run.result.verdict == (1 if failed else 0), reset_run.result.summary()
