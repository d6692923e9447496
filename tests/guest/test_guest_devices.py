"""Issue 6: device selection, refusals with unchanged contents, and a disk hot-plugged
while apply waits for it. One guest boot runs in_guest/test_devices.py; each in-guest
test (and each refused case) is reported here under its own name."""

from __future__ import annotations

import pytest

from guestkit.qmp import hotplug_virtio_disk
from guestkit.vm import Disk, RunningJob, blank_disk

from .harness import in_guest_cases, in_guest_tests, run_suites
from .test_guest_core import ext4_disk

pytestmark = pytest.mark.guest

# Puts the disks in the states the refused cases need (see the in-guest docstring).
PREP = """
udevadm settle
id=/dev/disk/by-id/virtio-
printf 'label: gpt\\n,32M\\n' | sfdisk -q ${id}dl-gpt
pvcreate -q ${id}dl-foreign
vgcreate -q foreign ${id}dl-foreign
mkfs.ext4 -q -L mounted ${id}dl-mounted
mkdir -p /mnt/mounted
mount -o ro ${id}dl-mounted /mnt/mounted
mkswap -q ${id}dl-swap
tr '\\000' '\\253' </dev/zero | dd of=${id}dl-stale bs=1M count=128 iflag=fullblock status=none
udevadm settle
test -b /dev/nvme0n1
lsblk -o NAME,SIZE,TYPE,FSTYPE,PTTYPE,SERIAL,MOUNTPOINTS
"""

LATE_LINE = "dl-late-apply: direct-lvm: still waiting for serial=dl-late"


@pytest.fixture(scope="module")
def devices_run(guest_image, deb, tmp_path_factory):
    work = tmp_path_factory.mktemp("devices")
    ext4_disk(work / "ext4.raw", b"data that must survive a refused apply\n" * 1000)
    names = [("gpt", "64M"), ("foreign", "64M"), ("mounted", "64M"), ("swap", "64M"),
             ("data", "2G"), ("small", "32M"), ("twin1", "96M"), ("twin2", "96M")]  # fmt: skip
    disks = [Disk(work / "ext4.raw", serial="dl-ext4")]
    disks += [Disk(blank_disk(work / f"{n}.raw", size), serial=f"dl-{n}") for n, size in names]
    disks.append(Disk(blank_disk(work / "ro.raw", "64M"), serial="dl-ro", readonly=True))
    disks.append(Disk(blank_disk(work / "stale.raw", "128M"), serial="dl-stale"))
    disks.append(Disk(blank_disk(work / "nvme.raw", "1G"), serial="dl-nvme", nvme=True))
    late = blank_disk(work / "late.raw", "1G")

    def hotplug_when_waited_for(job: RunningJob) -> None:
        # the guest's apply echoes its log to the console: plug once it has waited 5 s
        if job.wait_for_console(LATE_LINE) and job.qmp_socket is not None:
            hotplug_virtio_disk(job.qmp_socket, late, node="late0", serial="dl-late")

    return run_suites(guest_image, deb, work, ["test_devices"], disks=disks, prep=PREP,
                      during=hotplug_when_waited_for, qmp=True)  # fmt: skip


@pytest.mark.parametrize("case", in_guest_cases("test_devices"))
def test_refused_and_untouched(devices_run, case):
    devices_run.check(f"test_refused[{case}]")


@pytest.mark.parametrize("name", [n for n in in_guest_tests("test_devices") if n != "test_refused"])
def test_devices(devices_run, name):
    devices_run.check(name)


def test_guest_verdict_is_the_in_guest_pytest_status(devices_run):
    failed = [n for n, (o, _) in devices_run.outcomes.items() if o != "passed"]
    assert devices_run.result.verdict == (1 if failed else 0), devices_run.result.summary()
