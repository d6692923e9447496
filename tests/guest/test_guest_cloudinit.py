"""Issue: first boot through real cloud-init. A bookworm image baked with our .deb and
`direct-lvm image-setup` (docker enabled, as on any stock install) boots with user-data
from `direct-lvm render` on a NoCloud seed: first boot, second boot of the same disks,
and a first boot of an image in which docker had already run during the bake (that one
gets its config through write_files instead of the direct_lvm key)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from guestkit.vm import Disk, blank_disk

from .harness import ROOT, in_guest_tests, nocloud_seed, run_suites

pytestmark = pytest.mark.guest

# The harness image is a debootstrap minbase with no locale generated, so cloud-init's
# locale module fails there (a stock cloud image has en_US.UTF-8). Generate it, as the
# distribution's own images do; `locale: false` would be a schema warning of its own.
BAKE = """
echo 'en_US.UTF-8 UTF-8' >> /etc/locale.gen
locale-gen
direct-lvm image-setup
systemctl enable docker.service docker.socket containerd.service
cloud-init clean --logs
"""

DOCKER_RAN_DURING_BAKE = """
systemctl start docker
mkdir -p /tmp/r/bin && cp /bin/busybox /tmp/r/bin/ && ln -sf busybox /tmp/r/bin/sh
tar -C /tmp/r -c . | docker import - bake/busybox
systemctl stop docker.socket docker.service
test -d /var/lib/docker/overlay2
cloud-init clean --logs
"""


def render_all(out: Path) -> Path:
    """Every shipped environment, with each carrier: <env>/ (the direct_lvm key) and
    <env>-file/ (write_files of /etc/direct-lvm/config.yaml)."""
    for env in sorted(p.stem for p in (ROOT / "environments").glob("*.yaml")):
        for carrier, suffix in (("key", ""), ("file", "-file")):
            subprocess.run(
                [sys.executable, "-m", "direct_lvm", "render", "--env", env, "--carrier",
                 carrier, "--envs-dir", str(ROOT / "environments"), "--out",
                 str(out / f"{env}{suffix}")],
                check=True, capture_output=True,
            )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def baked(guest_image, deb, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("bake")
    overlay = work / "baked.qcow2"
    r = run_suites(guest_image, deb, work, [], [], prep=BAKE, root_overlay=overlay)
    assert r.result.ok, f"bake failed: {r.result.summary()}\n{r.result.console_tail(60)}"
    return overlay


@pytest.fixture(scope="module")
def instance(baked, tmp_path_factory):
    """Disks of one launched instance: root (a copy of the baked image), data, seed."""
    work = tmp_path_factory.mktemp("instance")
    rendered = render_all(work / "rendered")
    root = work / "root.qcow2"
    shutil.copy(baked, root)
    seed = nocloud_seed(work / "seed.img", (rendered / "ci-guest/user-data.yaml").read_text(),
                        "iid-direct-lvm-1")  # fmt: skip
    data = blank_disk(work / "data1.raw", "4G")
    disks = [Disk(data, serial="dl-data1"), Disk(seed, serial="cidata")]
    return {"root": root, "disks": disks, "rendered": rendered}


@pytest.fixture(scope="module")
def first_boot(guest_image, deb, instance, tmp_path_factory):
    return run_suites(
        guest_image, deb, tmp_path_factory.mktemp("boot1"), ["test_firstboot"],
        instance["disks"], root_overlay=instance["root"], cmdline_extra="ds=nocloud",
        files={"rendered": instance["rendered"]},
    )  # fmt: skip


@pytest.fixture(scope="module")
def second_boot(guest_image, deb, instance, first_boot, tmp_path_factory):
    return run_suites(
        guest_image, deb, tmp_path_factory.mktemp("boot2"), ["test_secondboot"],
        instance["disks"], root_overlay=instance["root"], cmdline_extra="ds=nocloud",
    )  # fmt: skip


@pytest.fixture(scope="module")
def takeover_boot(guest_image, deb, baked, tmp_path_factory):
    work = tmp_path_factory.mktemp("takeover")
    root = work / "root.qcow2"
    shutil.copy(baked, root)
    used = run_suites(guest_image, deb, work / "bake", [], [], prep=DOCKER_RAN_DURING_BAKE,
                      root_overlay=root)  # fmt: skip
    assert used.result.ok, f"docker during bake failed: {used.result.console_tail(60)}"
    rendered = render_all(work / "rendered")
    # this instance gets its config through write_files (the carrier for cloud-init >= 23.4)
    seed = nocloud_seed(work / "seed.img",
                        (rendered / "ci-guest-file/user-data.yaml").read_text(),
                        "iid-direct-lvm-takeover")  # fmt: skip
    data = blank_disk(work / "data1.raw", "4G")
    return run_suites(
        guest_image, deb, work / "boot", ["test_takeover"],
        [Disk(data, serial="dl-data1"), Disk(seed, serial="cidata")],
        root_overlay=root, cmdline_extra="ds=nocloud",
    )  # fmt: skip


@pytest.mark.parametrize("name", in_guest_tests("test_firstboot"))
def test_first_boot(first_boot, name):
    first_boot.check(name)


@pytest.mark.parametrize("name", in_guest_tests("test_secondboot"))
def test_second_boot(second_boot, name):
    second_boot.check(name)


@pytest.mark.parametrize("name", in_guest_tests("test_takeover"))
def test_takeover(takeover_boot, name):
    takeover_boot.check(name)
