"""Packer bake (scripts/bake, packer/): the template is formatted and valid (fast tests,
need the packer binary), and a real `packer build` for the ci-guest environment gives an
image whose first boot, with a blank data disk and user-data from `direct-lvm render`,
makes the pool and starts docker on it (guest tests: testinfra over ssh, paramiko)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import testinfra
import yaml

from bakekit import packer
from bakekit.bake import Artifact, bake, runtime_needs
from bakekit.instance import Instance
from direct_lvm.envs import load_env
from direct_lvm.spec import Runtime
from guestkit.vm import Disk, blank_disk

from .harness import ROOT, nocloud_seed

pytest.register_assert_rewrite(f"{__package__}.packer_checks")

from . import packer_checks  # noqa: E402

ENV = "ci-guest"
INSTANCE_ID = "iid-packer-ci-guest-1"
BOOT_TIMEOUT_S = float(os.environ.get("DL_GUEST_TIMEOUT", "900"))


def ssh_key(directory: Path, comment: str) -> Path:
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                    "-f", str(key)], check=True)  # fmt: skip
    return key


def template_vars(tmp: Path) -> dict[str, str]:
    """The variables scripts/bake passes, with stand-in files (validate reads them)."""
    (tmp / "seed").mkdir()
    for name in ("user-data", "meta-data"):
        (tmp / "seed" / name).write_text("")
    for name in ("direct-lvm_0_all.deb", "base.raw", "vmlinux", "initrd.img"):
        (tmp / name).write_bytes(b"")
    return {
        "environment": ENV, "base_image": str(tmp / "base.raw"),
        "deb": str(tmp / "direct-lvm_0_all.deb"), "seed_dir": str(tmp / "seed"),
        "ssh_private_key_file": str(ssh_key(tmp, "validate")), "ssh_key_marker": "validate",
    }  # fmt: skip


# --- fast: the template ------------------------------------------------------------


def test_template_is_packer_fmt_clean():
    packer.fmt_check("packer")


@pytest.mark.parametrize(
    "boot",
    [
        pytest.param({"kernel": "vmlinux", "initrd": "initrd.img",
                      "kernel_append": "root=LABEL=root rw console=ttyS0,115200"},
                     id="base-without-bootloader"),
        pytest.param({"disk_size": "8G", "base_image_checksum": "sha256:" + "0" * 64},
                     id="vendor-image"),
    ],
)  # fmt: skip
def test_template_validates(tmp_path, boot):
    variables = {**template_vars(tmp_path), **boot, "packages": ["lvm2", "docker.io"]}
    for name in ("kernel", "initrd"):  # stand-in files made by template_vars
        if name in variables:
            variables[name] = str(tmp_path / variables[name])
    packer.validate("packer", variables, tmp_path)


def template_variables() -> dict[str, str]:
    """Each `variable "NAME" { ... }` block of packer/*.pkr.hcl, by name."""
    blocks: dict[str, str] = {}
    for path in sorted((ROOT / "packer").glob("*.pkr.hcl")):
        for m in re.finditer(r'^variable "([^"]+)" \{\n(.*?)^\}', path.read_text(), re.M | re.S):
            blocks[m.group(1)] = m.group(2)
    return blocks


def test_every_variable_has_a_description():
    blocks = template_variables()
    assert len(blocks) >= 20, sorted(blocks)
    missing = [
        n for n, body in blocks.items() if not re.search(r'^  description = ".+"$', body, re.M)
    ]
    assert missing == [], f"variables without a description: {missing}"


# variables that can be given a bad value, and one such value each
BAD_VALUES = {
    "cpus": "0",
    "memory": "64",
    "disk_size": "8 GB",
    "ssh_timeout": "soon",
    "accelerator": "kqemu",
    "base_image": "/nonexistent/base.qcow2",
    "deb": "/nonexistent/direct-lvm_0_all.deb",
    "kernel": "/nonexistent/vmlinuz",
    "initrd": "/nonexistent/initrd.img",
    "seed_dir": "/nonexistent",
    "ssh_private_key_file": "/nonexistent/key",
    "image_name": "sub/dir.qcow2",
    "base_image_checksum": "sha256",
    "environment": "../etc",
}


def test_every_checkable_variable_has_a_validation_block():
    blocks = template_variables()
    unchecked = [n for n in BAD_VALUES if "validation {" not in blocks.get(n, "")]
    assert unchecked == [], f"no validation block: {unchecked}"


@pytest.mark.parametrize(
    ("name", "words"),
    [("cpus", "whole number from 1"), ("memory", "MiB"), ("deb", "existing .deb"),
     ("disk_size", "size such as 8G"), ("seed_dir", "user-data and")],
)  # fmt: skip
def test_bad_value_fails_validate_naming_the_variable(tmp_path, name, words):
    variables = {**template_vars(tmp_path), name: BAD_VALUES[name]}
    with pytest.raises(packer.PackerError) as err:
        packer.validate("packer", variables, tmp_path)
    text = " ".join(" ".join(err.value.errors + err.value.tail).split())
    assert f"The {name} variable must" in text and words in text, str(err.value)


def test_plugins_example_for_packer_1_7_is_fmt_clean_and_documented(tmp_path):
    example = ROOT / "packer" / "plugins.pkr.hcl.example"
    text = example.read_text()
    assert 'source  = "github.com/hashicorp/qemu"' in text and "required_plugins" in text
    copy = tmp_path / "plugins.pkr.hcl"  # packer fmt looks at *.pkr.hcl only
    copy.write_text(text)
    packer.fmt_check("packer", copy)
    readme = (ROOT / "packer" / "README.md").read_text()
    assert "plugins.pkr.hcl.example" in readme and "packer init" in readme


def test_validate_failure_surfaces_packers_error(tmp_path):
    variables = template_vars(tmp_path)
    del variables["deb"]
    with pytest.raises(packer.PackerError) as err:
        packer.validate("packer", variables, tmp_path)
    assert err.value.returncode != 0
    assert any("deb" in line for line in err.value.errors + err.value.tail), str(err.value)


def test_stream_prefixes_elapsed_time_and_keeps_error_lines(tmp_path):
    fake = tmp_path / "packer"
    fake.write_text(
        "#!/bin/sh\n"
        "echo '==> qemu.x: Waiting for SSH to become available...'\n"
        "echo '    qemu.x: guest output mentioning error is not packer error'\n"
        "echo \"Build 'qemu.x' errored after 3 seconds: Timeout waiting for SSH.\"\n"
        "echo '--> qemu.x: Timeout waiting for SSH.'\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    echoed: list[str] = []
    with pytest.raises(packer.PackerError) as err:
        packer.build(str(fake), {"environment": ENV}, tmp_path, echo=echoed.append)
    assert all(line.startswith("[") and "s] " in line for line in echoed), echoed
    assert err.value.errors == [
        "Build 'qemu.x' errored after 3 seconds: Timeout waiting for SSH.",
        "--> qemu.x: Timeout waiting for SSH.",
    ]
    assert "Timeout waiting for SSH" in str(err.value)
    assert (tmp_path / "packer.log").read_text().count("\n") == 4


def test_var_args_render_lists_as_hcl():
    args = packer.var_args({"environment": "dev", "packages": ["lvm2", "docker.io"]})
    assert args == ["-var", "environment=dev", "-var", 'packages=["lvm2", "docker.io"]']


def bake_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "scripts" / "bake"), *args], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_bake_command_names_the_known_environments():
    r = bake_cli("--env", "nope")
    assert r.returncode == 2, r.stderr
    assert "no environment 'nope'" in r.stderr and "ci-guest" in r.stderr, r.stderr


def test_bake_command_refuses_to_overwrite_an_artifact(tmp_path):
    r = bake_cli("--env", ENV, "--out", str(tmp_path))
    assert r.returncode == 1 and "--force" in r.stderr, r.stderr


@pytest.mark.parametrize("env", sorted(p.stem for p in (ROOT / "environments").glob("*.yaml")))
def test_every_environment_maps_to_packages_and_units(env):
    packages, units = runtime_needs(load_env(ROOT / "environments", env))
    # the .deb's Depends (so it installs offline), and no pip
    depends = {"lvm2", "dmeventd", "thin-provisioning-tools", "python3-jinja2", "python3-yaml",
               "python3-jsonschema", "python3-tomlkit"}  # fmt: skip
    assert depends <= set(packages) and "python3-pip" not in packages
    if load_env(ROOT / "environments", env).spec.runtime is Runtime.CONTAINERD_DEVMAPPER:
        assert "containerd" in packages and units == ["containerd.service"]
    else:
        assert "docker.io" in packages and "docker.service" in units


# --- guest: a real bake, then a first boot of the image -----------------------------


@pytest.fixture(scope="module")
def baked(guest_image, deb, tmp_path_factory) -> Artifact:
    """`packer build` for ci-guest through scripts/bake's code (DL_BAKED_IMAGE=DIR reuses
    an artifact directory while working on the checks)."""
    if reuse := os.environ.get("DL_BAKED_IMAGE"):
        return Artifact.load(Path(reuse))
    return bake(ENV, tmp_path_factory.mktemp("bake") / "image", deb=deb)


def user_data_with_login(public_key: str, work: Path) -> str:
    """ci-guest's rendered user-data, plus what a user adds to log in: a key for root."""
    out = work / "rendered"
    subprocess.run(
        [sys.executable, "-m", "direct_lvm", "render", "--env", ENV,
         "--envs-dir", str(ROOT / "environments"), "--out", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    rendered = (out / "user-data.yaml").read_text()
    login = {"disable_root": False, "ssh_authorized_keys": [public_key]}
    return rendered.rstrip("\n") + "\n" + yaml.safe_dump(login, sort_keys=False)


@pytest.fixture(scope="module")
def instance(baked, tmp_path_factory) -> Iterator[tuple[Instance, Path]]:
    work = tmp_path_factory.mktemp("instance")
    key = ssh_key(work, "direct-lvm-test")
    user_data = user_data_with_login(key.with_suffix(".pub").read_text().strip(), work)
    seed = nocloud_seed(work / "seed.img", user_data, INSTANCE_ID)
    data = blank_disk(work / "data1.raw", "4G")
    disks = [Disk(data, serial="dl-data1"), Disk(seed, serial="cidata")]
    with Instance(baked, work / "vm", disks) as vm:
        yield vm, key


@pytest.fixture(scope="module")
def host(instance, tmp_path_factory):
    vm, key = instance
    vm.wait_for_ssh(BOOT_TIMEOUT_S)
    config = tmp_path_factory.mktemp("ssh") / "config"
    config.write_text(
        f"Host instance\n  HostName 127.0.0.1\n  Port {vm.ssh_port}\n  User root\n"
        f"  IdentityFile {key}\n  StrictHostKeyChecking no\n"
    )
    return testinfra.get_host("paramiko://instance", ssh_config=str(config), timeout=60)


def wait_for(predicate, timeout: float, what: str, vm: Instance) -> float:
    """Poll predicate until true; return the seconds since qemu started."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{vm.console_tail()}")
        time.sleep(1)
    return vm.elapsed()


@pytest.fixture(scope="module")
def settled(host, instance) -> dict[str, float]:
    """Wait for cloud-init and docker; return the boot timings (seconds)."""
    vm, _ = instance
    ssh_up = vm.elapsed()
    host.run("cloud-init status --wait")
    ci_done = wait_for(lambda: host.file("/var/lib/cloud/data/result.json").exists,
                       BOOT_TIMEOUT_S, "cloud-init's result.json", vm)  # fmt: skip
    docker = wait_for(lambda: host.run("docker info --format '{{.Driver}}'").rc == 0,
                      BOOT_TIMEOUT_S, "dockerd to answer", vm)  # fmt: skip
    btime = int(host.check_output("awk '/^btime/ {print $2}' /proc/stat"))
    lvs = "lvs --noheadings --config 'report/time_format=\"%s\"' -o lv_time docker/thinpool"
    lv_time = int(host.check_output(lvs))
    docker_active = int(host.check_output(
        "systemctl show -p ActiveEnterTimestampMonotonic --value docker.service"))  # fmt: skip
    return {
        "host: ssh answering": round(ssh_up, 1),
        "host: cloud-init done": round(ci_done, 1),
        "host: docker answering": round(docker, 1),
        "guest: pool created (s after kernel start, 1 s resolution)": lv_time - btime,
        "guest: docker.service active (s after kernel start)": round(docker_active / 1e6, 1),
    }


@pytest.mark.guest
@pytest.mark.parametrize("check", packer_checks.CHECKS, ids=lambda c: c.__name__)
def test_baked_image_first_boot(host, settled, baked, check):
    check(host, packer_checks.Facts(INSTANCE_ID, baked.bake_public_key))


@pytest.mark.guest
def test_bake_and_boot_times(baked, settled, tmp_path_factory):
    report = {"bake (packer build)": baked.bake_seconds, **settled}
    print(json.dumps(report, indent=2))
    out = tmp_path_factory.getbasetemp() / "packer-timing.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    pool = settled["guest: pool created (s after kernel start, 1 s resolution)"]
    assert pool <= settled["guest: docker.service active (s after kernel start)"] + 1


class Ext4Image:
    """Read files of the artifact's root file system without booting or mounting it
    (the default base has a bare ext4 root: no partition table)."""

    def __init__(self, qcow2: Path, raw: Path) -> None:
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(qcow2), str(raw)], check=True)
        self.raw = raw

    def _debugfs(self, request: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["debugfs", "-R", request, str(self.raw)], capture_output=True,
                              text=True, check=True)  # fmt: skip

    def ls(self, path: str) -> list[str]:
        """Names in directory path ([] when it does not exist)."""
        out = self._debugfs(f"ls -p {path}").stdout
        names = [ln.split("/")[5] for ln in out.splitlines() if ln.count("/") >= 6]
        return [n for n in names if n not in (".", "..")]

    def exists(self, path: str) -> bool:
        return "not found" not in self._debugfs(f"stat {path}").stderr

    def read(self, path: str) -> str:
        return self._debugfs(f"cat {path}").stdout


@pytest.mark.guest
def test_artifact_has_no_pool_no_runtime_storage_no_bake_state(baked, tmp_path):
    root = Ext4Image(baked.disk, tmp_path / "root.raw")
    assert root.ls("/var/lib/docker") == [], "docker initialized storage during the bake"
    assert not root.exists("/etc/lvm/profile/docker-thinpool.profile")
    # no pool's storage options: they come at first boot, in the env file that the static
    # drop-in image-setup baked reads (so that boot needs no daemon-reload)
    assert not root.exists("/etc/direct-lvm/docker-storage.env")
    dropin = root.read("/etc/systemd/system/docker.service.d/direct-lvm.conf")
    assert "EnvironmentFile=-/etc/direct-lvm/docker-storage.env" in dropin
    assert "dm.thinpooldev" not in dropin and "--storage-driver" not in dropin
    # image-setup's files, and the runtime enabled (not started: see above)
    assert root.exists("/etc/cloud/cloud.cfg.d/90_direct_lvm.cfg")
    assert root.exists("/etc/systemd/system/docker.service.d/10-direct-lvm-order.conf")
    # image-setup's render record: a first boot of a default layout imports no jinja2
    assert '"format": 1' in root.read("/var/lib/direct-lvm/rendered.json")
    assert root.exists("/etc/systemd/system/multi-user.target.wants/docker.service")
    assert root.exists("/etc/systemd/system/sockets.target.wants/docker.socket")
    # nothing of the bake's instance or login
    assert root.ls("/var/lib/cloud/instances") == [] and not root.exists("/var/lib/cloud/data")
    assert not root.exists("/var/log/cloud-init.log")
    assert root.read("/etc/machine-id") == ""
    assert [n for n in root.ls("/etc/ssh") if n.startswith("ssh_host_")] == []
    assert not root.exists("/root/.ssh/authorized_keys")
    assert [n for n in root.ls("/tmp") if n.endswith(".deb")] == []
    assert root.exists("/usr/lib/python3/dist-packages/cc_direct_lvm.py")


@pytest.mark.guest
def test_bake_artifact_and_no_key_left_on_the_host(baked):
    assert baked.disk.is_file() and baked.disk.suffix == ".qcow2"
    manifest = json.loads((baked.disk.parent / "packer-manifest.json").read_text())
    assert manifest["builds"][0]["custom_data"]["environment"] == ENV
    kept = [pub for pub in Path(tempfile.gettempdir()).glob("direct-lvm-bake-*/bake_key.pub")
            if pub.read_text().strip() == baked.bake_public_key]  # fmt: skip
    assert kept == [], f"the bake's throw-away key was kept: {kept}"
