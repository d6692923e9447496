"""Issue 11: the runtimes whose root directory is a dedicated XFS LV, proven in one
bookworm boot with four blank disks: containerd-overlayfs on dl-data1 (growing onto
dl-data3) and podman on dl-data2 (growing onto dl-data4), each through the CLI:
refusals that leave the disk untouched, a takeover, the runtime's own report of our
mount, a container run, a no-op second apply and online growth."""

from __future__ import annotations

import pytest

from guestkit.vm import Disk, blank_disk

from .harness import in_guest_tests, run_suites

pytestmark = pytest.mark.guest

SUITES = ["test_containerd_overlayfs", "test_podman"]


@pytest.fixture(scope="module")
def bookworm_lvroot(guest_image, deb, tmp_path_factory):
    work = tmp_path_factory.mktemp("lvroot-bookworm")
    disks = [Disk(blank_disk(work / f"data{i}.raw", "2G" if i < 3 else "1G"),
                  serial=f"dl-data{i}") for i in (1, 2, 3, 4)]  # fmt: skip
    return run_suites(guest_image, deb, work, SUITES, disks)


@pytest.mark.parametrize(("suite", "name"), [(s, n) for s in SUITES for n in in_guest_tests(s)])
def test_bookworm_lvroot(bookworm_lvroot, suite, name):
    bookworm_lvroot.check(name)
