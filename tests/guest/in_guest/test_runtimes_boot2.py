"""Second boot of the trixie instance: the module changes nothing, docker is still on
its LV, and containerd (ordered after its pool's device) loads devmapper again."""

import json
import re
from pathlib import Path

import pytest
from cloudinit_helpers import this_boot_log

pytestmark = pytest.mark.usefixtures("cloud_init_settled")


def test_module_ran_and_changed_nothing(host):
    log = this_boot_log()
    assert re.search(r"Running module direct_lvm .* with frequency always", log)
    assert "docker/docker matches the config; nothing changed" in log, log[-3000:]
    assert re.findall(r"\[INFO\]: \+ .*", log) == []  # no changing command ran
    assert not re.search(r"\[(WARNING|ERROR)\]", log), log[-3000:]


def test_same_lv_still_mounted_and_docker_on_it(host):
    first = json.loads(Path("/var/tmp/dl-overlay2-first-boot.json").read_text())
    out = host.check_output("lvs --reportformat json -o lv_uuid docker/docker")
    assert json.loads(out)["report"][0]["lv"][0]["lv_uuid"] == first["lv_uuid"]
    m = json.loads(host.check_output("findmnt --json -o SOURCE,FSTYPE /var/lib/docker"))
    assert m["filesystems"][0]["fstype"] == "xfs"
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert (info["Driver"], info["DockerRootDir"]) == ("overlay2", "/var/lib/docker")
    assert "dl/busybox" in host.check_output("docker images --format '{{.Repository}}'")
    out = host.check_output("docker run --rm --network none dl/busybox sh -c 'echo again'")
    assert out.strip() == "again"


def test_containerd_devmapper_ok_after_reboot(host):
    from cloudinit_helpers import wait_for

    wait_for(lambda: host.run("ctr version").rc == 0, 300, "containerd to answer")
    out = host.check_output("ctr plugins ls")
    assert re.search(r"^io\.containerd\.snapshotter\.v1\s+devmapper\s+\S+\s+ok\s*$", out, re.M), out
    # containerd's start waited for the pool's device node, and found it
    pre = host.check_output("systemctl show -p ExecStartPre --value containerd.service")
    assert re.search(r"\{[^}]*udevadm wait[^}]*status=0[ /]", pre), pre
    out = host.check_output(
        "ctr run --rm --snapshotter devmapper docker.io/dl/busybox:latest dl-again "
        "sh -c 'echo devmapper-again'"
    )
    assert out.strip() == "devmapper-again"
