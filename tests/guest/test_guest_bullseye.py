"""Issue 10: bullseye in the guest tiers (cloud-init 20.4, docker.io 20.10, containerd 1.4,
lvm2 2.03.11, systemd 247, kernel 5.10, Python 3.9). One bullseye image per session, baked
once with our .deb and `direct-lvm image-setup` (no pip in the image), then:

- instance A, boot 1: docker-devicemapper through real cloud-init (user-data with the
  direct_lvm key); boot 2 of the same disks changes nothing;
- instance B, boot 1: containerd-devmapper through cloud-init, the config carried as a
  write_files file; cloud-init 20.4 calls handle() with five positional arguments.

Both carriers are also checked against 20.4's own schema (`cloud-init devel schema`)."""

from __future__ import annotations

import shutil

import pytest

from guestkit.vm import Disk, blank_disk

from .harness import in_guest_tests, nocloud_seed, run_suites
from .test_guest_cloudinit import BAKE, render_all

pytestmark = pytest.mark.guest

BULLSEYE_VERSIONS = {  # package -> version prefix the tier is about
    "cloud-init": "20.4",
    "docker.io": "20.10",
    "containerd": "1.4",
    "lvm2": "2.03.11",
    "systemd": "247",
    "python3.9": "3.9",
}


@pytest.fixture(scope="module")
def baked(bullseye_image, deb, tmp_path_factory):
    work = tmp_path_factory.mktemp("bullseye-bake")
    overlay = work / "baked.qcow2"
    r = run_suites(bullseye_image, deb, work, [], [], prep=BAKE, root_overlay=overlay)
    assert r.result.ok, f"bake failed: {r.result.summary()}\n{r.result.console_tail(60)}"
    return overlay


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return render_all(tmp_path_factory.mktemp("bullseye-rendered"))


def launch(baked, rendered, work, env, serial, iid):
    root = work / "root.qcow2"
    shutil.copy(baked, root)
    seed = nocloud_seed(work / "seed.img", (rendered / env / "user-data.yaml").read_text(), iid)
    data = blank_disk(work / f"{serial}.raw", "4G")
    return {"root": root, "disks": [Disk(data, serial=serial), Disk(seed, serial="cidata")]}


@pytest.fixture(scope="module")
def instance_a(baked, rendered, tmp_path_factory):
    work = tmp_path_factory.mktemp("bullseye-a")
    return launch(baked, rendered, work, "ci-guest", "dl-data1", "iid-bullseye-a")


@pytest.fixture(scope="module")
def a_boot1(bullseye_image, deb, instance_a, rendered, tmp_path_factory):
    return run_suites(
        bullseye_image, deb, tmp_path_factory.mktemp("bullseye-a1"), ["test_bullseye_firstboot"],
        instance_a["disks"], root_overlay=instance_a["root"], cmdline_extra="ds=nocloud",
        files={"rendered": rendered},
    )  # fmt: skip


@pytest.fixture(scope="module")
def a_boot2(bullseye_image, deb, instance_a, a_boot1, tmp_path_factory):
    return run_suites(
        bullseye_image, deb, tmp_path_factory.mktemp("bullseye-a2"), ["test_secondboot"],
        instance_a["disks"], root_overlay=instance_a["root"], cmdline_extra="ds=nocloud",
    )  # fmt: skip


@pytest.fixture(scope="module")
def b_boot1(bullseye_image, deb, baked, rendered, tmp_path_factory):
    work = tmp_path_factory.mktemp("bullseye-b")
    b = launch(baked, rendered, work, "ci-containerd-file", "dl-data2", "iid-bullseye-b")
    return run_suites(
        bullseye_image, deb, work / "boot1", ["test_bullseye_containerd"], b["disks"],
        root_overlay=b["root"], cmdline_extra="ds=nocloud",
    )  # fmt: skip


def test_image_has_bullseyes_versions_and_no_pip(bullseye_image):
    installed = dict(
        line.split(None, 1) for line in bullseye_image.manifest.read_text().splitlines()
    )
    for package, prefix in BULLSEYE_VERSIONS.items():
        assert installed.get(package, "").startswith(prefix), (package, installed.get(package))
    assert bullseye_image.kernel_version.startswith("5.10."), bullseye_image.kernel_version
    assert "python3-pip" not in installed and "python3-testinfra" not in installed


@pytest.mark.parametrize("name", in_guest_tests("test_bullseye_firstboot"))
def test_a_first_boot(a_boot1, name):
    a_boot1.check(name)


@pytest.mark.parametrize("name", in_guest_tests("test_secondboot"))
def test_a_second_boot(a_boot2, name):
    a_boot2.check(name)


@pytest.mark.parametrize("name", in_guest_tests("test_bullseye_containerd"))
def test_b_containerd_first_boot(b_boot1, name):
    b_boot1.check(name)
