"""Issue 5: runtimes beyond Docker 24. containerd-devmapper on bookworm (containerd 1.6)
in one boot, which also grows a docker-overlay2 LV on a loop device; on trixie (docker
26, containerd 1.7) an image baked with image-setup boots twice with three blank disks:
docker-overlay2 through cloud-init (write_files carrier) on dl-data1,
containerd-devmapper through the CLI on dl-data2, and docker-devicemapper refused on
dl-data3 without touching it; the second boot must change nothing."""

from __future__ import annotations

import shutil

import pytest

from guestkit.image import build_image
from guestkit.vm import Disk, blank_disk

from .harness import in_guest_tests, nocloud_seed, run_suites
from .test_guest_cloudinit import BAKE, render_all

pytestmark = pytest.mark.guest

TRIXIE_BOOT1 = ["test_overlay2", "test_refusal", "test_containerd"]


@pytest.fixture(scope="module")
def bookworm_containerd(guest_image, deb, tmp_path_factory):
    work = tmp_path_factory.mktemp("ctd-bookworm")
    data = blank_disk(work / "data2.raw", "4G")
    return run_suites(guest_image, deb, work, ["test_containerd", "test_overlay2_growth"],
                      disks=[Disk(data, serial="dl-data2")])  # fmt: skip


@pytest.fixture(scope="module")
def trixie_instance(deb, tmp_path_factory):
    image = build_image("trixie")
    work = tmp_path_factory.mktemp("trixie")
    root = work / "root.qcow2"
    bake = run_suites(image, deb, work / "bake", [], [], prep=BAKE, root_overlay=root)
    assert bake.result.ok, f"bake failed: {bake.result.summary()}\n{bake.result.console_tail(60)}"
    rendered = render_all(work / "rendered")
    seed = nocloud_seed(work / "seed.img",
                        (rendered / "ci-overlay2-file/user-data.yaml").read_text(),
                        "iid-direct-lvm-trixie")  # fmt: skip
    disks = [Disk(blank_disk(work / f"data{i}.raw", "4G" if i < 3 else "1G"),
                  serial=f"dl-data{i}") for i in (1, 2, 3)]  # fmt: skip
    return {"image": image, "root": root, "disks": [*disks, Disk(seed, serial="cidata")]}


@pytest.fixture(scope="module")
def trixie_boot1(deb, trixie_instance, tmp_path_factory):
    t = trixie_instance
    return run_suites(t["image"], deb, tmp_path_factory.mktemp("trixie-boot1"), TRIXIE_BOOT1,
                      t["disks"], root_overlay=t["root"], cmdline_extra="ds=nocloud")  # fmt: skip


@pytest.fixture(scope="module")
def trixie_boot2(deb, trixie_instance, trixie_boot1, tmp_path_factory):
    t = trixie_instance
    shutil.copy(t["root"], t["root"].with_suffix(".after-boot1.qcow2"))  # for debugging
    return run_suites(t["image"], deb, tmp_path_factory.mktemp("trixie-boot2"),
                      ["test_runtimes_boot2"], t["disks"], root_overlay=t["root"],
                      cmdline_extra="ds=nocloud")  # fmt: skip


@pytest.mark.parametrize("name", in_guest_tests("test_containerd"))
def test_bookworm_containerd(bookworm_containerd, name):
    bookworm_containerd.check(name)


@pytest.mark.parametrize("name", in_guest_tests("test_overlay2_growth"))
def test_bookworm_overlay2_growth(bookworm_containerd, name):
    bookworm_containerd.check(name)


@pytest.mark.parametrize(
    ("suite", "name"), [(s, n) for s in TRIXIE_BOOT1 for n in in_guest_tests(s)]
)
def test_trixie_first_boot(trixie_boot1, suite, name):
    trixie_boot1.check(name)


@pytest.mark.parametrize("name", in_guest_tests("test_runtimes_boot2"))
def test_trixie_second_boot(trixie_boot2, name):
    trixie_boot2.check(name)
