"""The boot path beyond a single cloud-init boot (issue 10 items 3-4, issue 12 item 1).

Without cloud-init: an image set up with `direct-lvm image-setup --no-cloud-init`
(cloud-init disabled on the kernel command line, as guestkit boots without `ds=`), with
/etc/direct-lvm/config.yaml and docker enabled: direct-lvm.service makes the pool before
docker starts (boot 1); boot 2 of the same disks changes nothing.

With cloud-init, on an image set up with `direct-lvm image-setup` that also has
direct-lvm.service enabled: an instance whose user-data carries no config (a WARNING,
`status` says "no config"), and one whose user-data is multi-part, another cloud-config
part with its own write_files first and ours (`direct-lvm render`, default carrier)
second: both files arrive, the module makes the pool, and the service, run after it in
the same boot, says so and does nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
import yaml

from guestkit.vm import Disk, blank_disk

from .harness import ROOT, SuiteRun, in_guest_tests, nocloud_seed, run_suites

pytestmark = pytest.mark.guest

BAKE_SERVICE = """
mkdir -p /etc/direct-lvm
cp /job/config.yaml /etc/direct-lvm/config.yaml
direct-lvm image-setup --no-cloud-init > /job/out/image-setup.txt
systemctl enable docker.service docker.socket containerd.service
systemd-analyze verify direct-lvm.service docker.service > /job/out/verify.txt 2>&1
"""

# As in test_guest_cloudinit: the harness image has no locale, cloud-init's locale module
# needs one. Both boot paths are enabled (the .deb ships the unit, not enabled), to show
# they never both do the work.
BAKE_CLOUD_INIT = """
echo 'en_US.UTF-8 UTF-8' >> /etc/locale.gen
locale-gen
direct-lvm image-setup > /job/out/image-setup.txt
systemctl enable direct-lvm.service docker.service docker.socket containerd.service
cloud-init clean --logs
"""

OTHER_PART = """#cloud-config
write_files:
  - path: /etc/dl-other-part.conf
    content: |
      from the other part
"""


def ci_guest_config(work: Path) -> Path:
    env = yaml.safe_load((ROOT / "environments/ci-guest.yaml").read_text())
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump({"direct_lvm": env["direct_lvm"]}, sort_keys=False))
    return path


def rendered_part(work: Path) -> str:
    """ci-guest rendered with render's default carrier (file)."""
    out = work / "rendered"
    subprocess.run(
        [sys.executable, "-m", "direct_lvm", "render", "--env", "ci-guest",
         "--envs-dir", str(ROOT / "environments"), "--out", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    return (out / "user-data.yaml").read_text()


def multipart(*parts: tuple[str, str]) -> str:
    """MIME multi-part user-data, as `cloud-init devel make-mime` writes it."""
    msg = MIMEMultipart()
    for name, text in parts:
        part = MIMEText(text, "cloud-config")
        part.add_header("Content-Disposition", "attachment", filename=name)
        msg.attach(part)
    return msg.as_string()


def boot_ok(run: SuiteRun, what: str) -> SuiteRun:
    print(f"{what}: {run.result.duration_s:.0f} s ({run.result.summary()})")
    return run


def baked(guest_image, deb, work: Path, prep: str, files: dict[str, Path]) -> Path:
    overlay = work / "baked.qcow2"
    r = run_suites(guest_image, deb, work, [], [], prep=prep, root_overlay=overlay,
                   files=files)  # fmt: skip
    print(f"bake {work.name}: {r.result.duration_s:.0f} s")
    assert r.result.ok, f"bake failed: {r.result.summary()}\n{r.result.console_tail(60)}"
    return overlay


# ------------------------------------------------------------------ without cloud-init


@pytest.fixture(scope="module")
def service_image(guest_image, deb, tmp_path_factory):
    work = tmp_path_factory.mktemp("bake-service")
    overlay = baked(guest_image, deb, work, BAKE_SERVICE,
                    {"config.yaml": ci_guest_config(work)})  # fmt: skip
    return overlay, work / "out"


@pytest.fixture(scope="module")
def service_disks(service_image, tmp_path_factory):
    work = tmp_path_factory.mktemp("service-instance")
    root = work / "root.qcow2"
    shutil.copy(service_image[0], root)
    return root, [Disk(blank_disk(work / "data1.raw", "4G"), serial="dl-data1")]


@pytest.fixture(scope="module")
def service_boot1(guest_image, deb, service_disks, tmp_path_factory):
    root, disks = service_disks
    return boot_ok(run_suites(guest_image, deb, tmp_path_factory.mktemp("service-boot1"),
                              ["test_service_boot1"], disks, root_overlay=root),
                   "service boot 1")  # fmt: skip


@pytest.fixture(scope="module")
def service_boot2(guest_image, deb, service_disks, service_boot1, tmp_path_factory):
    root, disks = service_disks
    return boot_ok(run_suites(guest_image, deb, tmp_path_factory.mktemp("service-boot2"),
                              ["test_service_boot2"], disks, root_overlay=root),
                   "service boot 2")  # fmt: skip


def test_image_setup_no_cloud_init_enabled_the_service(service_image):
    out = (service_image[1] / "image-setup.txt").read_text()
    assert "/etc/systemd/system/multi-user.target.wants/direct-lvm.service" in out, out
    assert "/etc/systemd/system/direct-lvm.service\n" not in out  # the .deb's unit is used
    assert "# direct-lvm.service will run /usr/bin/direct-lvm boot" in out, out
    assert "90_direct_lvm.cfg" not in out
    verify = (service_image[1] / "verify.txt").read_text()
    assert "direct-lvm" not in verify, verify  # systemd-analyze verify: nothing about ours


@pytest.mark.parametrize("name", in_guest_tests("test_service_boot1"))
def test_service_boot1(service_boot1, name):
    service_boot1.check(name)


@pytest.mark.parametrize("name", in_guest_tests("test_service_boot2"))
def test_service_boot2(service_boot2, name):
    service_boot2.check(name)


# ------------------------------------------------------------------ with cloud-init


@pytest.fixture(scope="module")
def cloud_init_image(guest_image, deb, tmp_path_factory):
    work = tmp_path_factory.mktemp("bake-cloud-init")
    return baked(guest_image, deb, work, BAKE_CLOUD_INIT, {}), work / "out"


def instance(image: Path, work: Path, user_data: str, iid: str) -> tuple[Path, list[Disk]]:
    root = work / "root.qcow2"
    shutil.copy(image, root)
    seed = nocloud_seed(work / "seed.img", user_data, iid)
    data = blank_disk(work / "data1.raw", "4G")
    return root, [Disk(data, serial="dl-data1"), Disk(seed, serial="cidata")]


@pytest.fixture(scope="module")
def noconfig_boot(guest_image, deb, cloud_init_image, tmp_path_factory):
    work = tmp_path_factory.mktemp("noconfig")
    root, disks = instance(cloud_init_image[0], work, "#cloud-config\n{}\n", "iid-dl-noconfig")
    return boot_ok(run_suites(guest_image, deb, work / "boot", ["test_noconfig_boot"], disks,
                              root_overlay=root, cmdline_extra="ds=nocloud"),
                   "cloud-init boot, no config")  # fmt: skip


@pytest.fixture(scope="module")
def merge_boot(guest_image, deb, cloud_init_image, tmp_path_factory):
    work = tmp_path_factory.mktemp("merge")
    user_data = multipart(("other.yaml", OTHER_PART), ("direct-lvm.yaml", rendered_part(work)))
    (work / "user-data.mime").write_text(user_data)
    root, disks = instance(cloud_init_image[0], work, user_data, "iid-dl-merge")
    return boot_ok(run_suites(guest_image, deb, work / "boot", ["test_merge_boot"], disks,
                              root_overlay=root, cmdline_extra="ds=nocloud"),
                   "cloud-init boot, multi-part user-data")  # fmt: skip


def test_image_setup_checked_cloud_inits_python(cloud_init_image):
    out = (cloud_init_image[1] / "image-setup.txt").read_text()
    assert "/etc/cloud/cloud.cfg.d/90_direct_lvm.cfg" in out, out
    assert "# cloud-init 22.4" in out and "runs on /usr/bin/python3, which imports " in out, out
    assert "# recommended carrier: file (render --carrier file)" in out, out


@pytest.mark.parametrize("name", in_guest_tests("test_noconfig_boot"))
def test_noconfig_boot(noconfig_boot, name):
    noconfig_boot.check(name)


@pytest.mark.parametrize("name", in_guest_tests("test_merge_boot"))
def test_merge_boot(merge_boot, name):
    merge_boot.check(name)
