"""docker-overlay2 on Docker >= 25 (trixie), first boot through cloud-init with the
config from write_files: a thick LV with XFS at /var/lib/docker, docker on overlay2
there, a per-container size limit from project quotas."""

import json
import re

import pytest
from cloudinit_helpers import this_boot_log

pytestmark = pytest.mark.usefixtures("cloud_init_settled")

STATE = "/var/tmp/dl-overlay2-first-boot.json"
LV = "/dev/mapper/docker-docker"


def lv_report(host):
    out = host.check_output(
        "lvs --reportformat json -o lv_uuid,lv_attr,lv_tags,segtype docker/docker"
    )
    return json.loads(out)["report"][0]["lv"][0]


def test_cloud_init_clean_and_module_applied(host):
    out = host.check_output("cloud-init status --long")
    assert re.search(r"^status: done$", out, re.M) and "degraded" not in out, out
    log = this_boot_log()
    bad = [ln for ln in log.splitlines() if re.search(r"\[(WARNING|ERROR|CRITICAL)\]", ln)]
    assert bad == [], "\n".join(bad)
    assert "docker/docker: " in log and "step(s) applied and verified" in log
    assert "+ mkfs.xfs -q -n ftype=1 /dev/mapper/docker-docker" in log


def test_thick_lv_with_xfs_ftype1(host):
    lv = lv_report(host)
    assert lv["lv_attr"].startswith("-") and lv["segtype"] == "linear"
    assert "direct_lvm" in lv["lv_tags"]
    info = host.check_output("xfs_info /var/lib/docker")
    assert "ftype=1" in info, info
    with open(STATE, "w") as f:
        json.dump({"lv_uuid": lv["lv_uuid"]}, f)


def test_mounted_by_our_unit_with_project_quotas(host):
    m = json.loads(host.check_output(
        "findmnt --json -o SOURCE,FSTYPE,OPTIONS /var/lib/docker"))["filesystems"][0]  # fmt: skip
    assert m["source"] in (LV, "/dev/mapper/docker-docker"), m
    assert m["fstype"] == "xfs" and "prjquota" in m["options"], m
    assert host.check_output("systemctl is-active var-lib-docker.mount").strip() == "active"
    assert host.check_output("systemctl is-enabled var-lib-docker.mount").strip() == "enabled"
    assert host.run("systemd-analyze verify var-lib-docker.mount docker.service").rc == 0


def test_docker_info_overlay2_on_our_lv(host):
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["Driver"] == "overlay2", info["Driver"]
    assert info["DockerRootDir"] == "/var/lib/docker"
    assert info["ServerVersion"].split(".")[0] >= "25", info["ServerVersion"]
    # docker started after the mount and after cloud-init
    after = host.check_output("systemctl show -p After --value docker.service")
    assert "var-lib-docker.mount" in after and "cloud-init.service" in after


def test_docker_run_with_the_size_limit(host):
    host.check_output(
        "mkdir -p /tmp/r/bin && cp /bin/busybox /tmp/r/bin/ && ln -sf busybox /tmp/r/bin/sh && "
        "tar -C /tmp/r -c . | docker import - dl/busybox"
    )
    out = host.check_output("docker run --rm --network none dl/busybox sh -c 'echo ok'")
    assert out.strip() == "ok"
    # overlay2.size=1G from the config: the container's root is a 1 GiB quota
    df = host.check_output("docker run --rm --network none dl/busybox busybox df -k /").splitlines()
    total_kib = int(df[-1].split()[1])
    assert 0 < total_kib <= 1024 * 1024, df
