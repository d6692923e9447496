import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from direct_lvm import image
from direct_lvm.errors import DirectLvmError
from direct_lvm.image import (
    CONTAINERD_ORDER_DROPIN,
    ORDER_DROPIN,
    OUR_CFG,
    current_modules,
    image_setup,
)

MARKER = "etc/direct-lvm/image-setup.json"

DATA = Path(__file__).parent / "data"


def fake_root(tmp_path: Path) -> Path:
    (tmp_path / "etc/cloud/cloud.cfg.d").mkdir(parents=True)
    shutil.copy(DATA / "cloud.cfg-bookworm", tmp_path / "etc/cloud/cloud.cfg")
    return tmp_path


def test_image_setup_registers_the_module_after_mounts(tmp_path):
    root = fake_root(tmp_path)
    before = current_modules(root)
    image_setup(root)
    cfg = yaml.safe_load((root / OUR_CFG).read_text())
    mods = cfg["cloud_init_modules"]
    assert mods[mods.index("mounts") + 1] == ["direct_lvm", "always"]
    # the distribution's list is kept whole, in order
    assert [m for m in mods if m != ["direct_lvm", "always"]] == before
    for path in (ORDER_DROPIN, CONTAINERD_ORDER_DROPIN):  # docker and containerd alike
        assert "[Unit]\nAfter=cloud-init.service\n" in (root / path).read_text()


def test_image_setup_is_idempotent(tmp_path):
    root = fake_root(tmp_path)
    image_setup(root)
    first = (root / OUR_CFG).read_text()
    image_setup(root)
    assert (root / OUR_CFG).read_text() == first
    mods = yaml.safe_load(first)["cloud_init_modules"]
    assert sum(1 for m in mods if m == ["direct_lvm", "always"]) == 1


def test_image_setup_follows_an_admin_override_in_cloud_cfg_d(tmp_path):
    root = fake_root(tmp_path)
    (root / "etc/cloud/cloud.cfg.d/50_site.cfg").write_text(
        "cloud_init_modules: [bootcmd, write_files]\n"
    )
    image_setup(root)
    mods = yaml.safe_load((root / OUR_CFG).read_text())["cloud_init_modules"]
    assert mods == ["bootcmd", "write_files", ["direct_lvm", "always"]]


def test_image_setup_creates_no_pool_and_runs_nothing(tmp_path):
    # the unit conftest fails any subprocess call: reaching here proves none ran
    written = image_setup(fake_root(tmp_path))
    assert {p.relative_to(tmp_path).as_posix() for p in written} == {
        OUR_CFG,
        ORDER_DROPIN,
        CONTAINERD_ORDER_DROPIN,
        MARKER,
    }
    marker = json.loads((tmp_path / MARKER).read_text())
    assert marker["mode"] == "cloud-init" and marker["version"]


def test_no_cloud_init_enables_the_service_and_orders_the_runtimes_after_it(tmp_path):
    root = fake_root(tmp_path)
    image_setup(root)  # set up for cloud-init first: the service then takes over
    written = image_setup(root, cloud_init=False)
    rel = {p.relative_to(root).as_posix() for p in written}
    unit = "etc/systemd/system/direct-lvm.service"  # no package put it in /lib
    wants = "etc/systemd/system/multi-user.target.wants/direct-lvm.service"
    assert rel == {unit, wants, ORDER_DROPIN, CONTAINERD_ORDER_DROPIN, MARKER}
    assert os.readlink(root / wants) == "/" + unit
    assert (root / unit).read_text() == (image.shipped_unit()).read_text()
    assert not (root / OUR_CFG).exists()  # the module is no longer registered
    for path in (ORDER_DROPIN, CONTAINERD_ORDER_DROPIN):
        assert "[Unit]\nAfter=direct-lvm.service\n" in (root / path).read_text()
    assert json.loads((root / MARKER).read_text())["mode"] == "service"


def test_no_cloud_init_enables_a_packaged_unit_in_place(tmp_path):
    root = tmp_path
    (root / "lib/systemd/system").mkdir(parents=True)
    (root / "lib/systemd/system/direct-lvm.service").write_text("[Unit]\n")
    image_setup(root, cloud_init=False)
    link = root / "etc/systemd/system/multi-user.target.wants/direct-lvm.service"
    assert os.readlink(link) == "/lib/systemd/system/direct-lvm.service"
    assert not (root / "etc/systemd/system/direct-lvm.service").exists()
    image_setup(root, cloud_init=False)  # again: same link
    assert os.readlink(link) == "/lib/systemd/system/direct-lvm.service"


def test_shipped_unit_runs_the_boot_command_before_the_runtimes():
    text = image.shipped_unit().read_text()
    assert "ExecStart=direct-lvm boot\n" in text
    assert "ConditionPathExists=/etc/direct-lvm/config.yaml\n" in text
    assert "Before=docker.service containerd.service" in text
    assert "DefaultDependencies=no" not in text  # after basic.target: D-Bus answers lvm2
    assert "Type=oneshot" in text and "RemainAfterExit=yes" in text


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        ("#!/usr/bin/python3\n", ["/usr/bin/python3"]),
        ("#! /usr/bin/python3 -s\nimport x", ["/usr/bin/python3", "-s"]),
        ("#!/usr/bin/env python3\n", ["/usr/bin/env", "python3"]),
        ("#!/opt/venv/bin/python\r\n", ["/opt/venv/bin/python"]),
        ("import sys\n", []),
        ("", []),
    ],
)
def test_shebang_argv(line, argv):
    assert image.shebang_argv(line) == argv


@pytest.mark.parametrize(
    ("version", "key_ok"),
    [("20.4", True), ("22.4.2", True), ("23.3.3", True), ("23.4", False), ("25.1.1", False),
     (None, False), ("unknown", False)],
)  # fmt: skip
def test_carrier_is_file_for_every_version(version, key_ok):
    carrier, why = image.recommended_carrier(version)
    assert carrier == "file"
    assert ("also boots clean" in why) == key_ok


def test_cloud_init_python_is_read_from_its_entry_point(tmp_path):
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/cloud-init").write_text("#!/usr/bin/python3.9\nimport cloudinit\n")
    exe, argv = image.cloud_init_python(tmp_path)
    assert exe == tmp_path / "usr/bin/cloud-init" and argv == ["/usr/bin/python3.9"]


def test_no_cloud_init_entry_point_is_an_error_with_the_fix(tmp_path):
    with pytest.raises(DirectLvmError, match="cloud-init's entry point not found") as e:
        image.cloud_init_python(tmp_path)
    assert "--no-cloud-init" in str(e.value)


def test_service_check_wants_the_executable_where_systemd_looks(tmp_path):
    with pytest.raises(DirectLvmError, match="no direct-lvm executable") as e:
        image.check_service(tmp_path)
    assert "install the .deb" in str(e.value)
    (tmp_path / "usr/local/bin").mkdir(parents=True)
    (tmp_path / "usr/local/bin/direct-lvm").write_text("#!/usr/bin/python3\n")
    assert "usr/local/bin/direct-lvm boot" in image.check_service(tmp_path).notes[0]


def test_image_setup_bakes_dockers_static_dropin(tmp_path):
    """The drop-in apply wants for docker-devicemapper depends only on docker.service:
    baked here, a first boot writes only the storage options (no daemon-reload)."""
    from direct_lvm import core, spec
    from direct_lvm.observed import RuntimeState
    from direct_lvm.runtimes._docker import DOCKER_DROPIN
    from direct_lvm.runtimes._systemd import ServiceState

    root = fake_root(tmp_path)
    check = image.Check()
    assert image_setup(root, check=check) and any("not baked" in n for n in check.notes)
    exec_start = "/usr/sbin/dockerd -H fd:// $DOCKER_OPTS"
    unit = root / "lib/systemd/system/docker.service"
    unit.parent.mkdir(parents=True)
    unit.write_text(f"[Unit]\nDescription=Docker\n[Service]\nExecStart={exec_start}\n")
    written = image_setup(root)
    dropin = root / DOCKER_DROPIN.lstrip("/")
    assert dropin in written
    docker = ServiceState("docker.service", True, (20, 10), "", False, (), exec_start)
    for cfg in ({"devices": ["/dev/vdb"]}, {"devices": ["/dev/vdc"], "vg": "v", "pool": "p"}):
        wanted = core.desired_files(spec.from_mapping(cfg), RuntimeState(service=docker))
        wanted = wanted[DOCKER_DROPIN]
        assert dropin.read_text() == wanted
    # another drop-in of ours there (docker-overlay2's names its LV) is left as it is
    overlay2 = "# Written by direct-lvm for the LV docker/docker; rewritten on every apply.\n"
    dropin.write_text(overlay2)
    check = image.Check()
    assert dropin not in image_setup(root, check=check)
    assert dropin.read_text() == overlay2 and any("left as it is" in n for n in check.notes)
