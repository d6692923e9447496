"""bullseye (cloud-init 20.4, docker 20.10, lvm2 2.03.11, systemd 247), instance A, first
boot: an image baked from our .deb, user-data from `direct-lvm render --carrier key` on a
NoCloud seed. cloud-init alone makes docker/thinpool; docker starts on it. Runs on
bullseye's Python 3.9 and pytest 6, without testinfra (conftest's LocalHost)."""

import json
import re

import pytest
from cloudinit_helpers import (
    FIRST_BOOT_STATE,
    LOG,
    assert_docker_on_pool,
    pool_report,
    this_boot_log,
)

pytestmark = pytest.mark.usefixtures("cloud_init_settled")


def test_versions_are_bullseyes(host):
    assert host.check_output("cloud-init --version").split()[-1].startswith("20.4"), "cloud-init"
    assert host.check_output("python3 -c 'import sys; print(sys.version_info[:2])'") == "(3, 9)"
    out = host.check_output("dpkg-query -W -f '${Version}' direct-lvm")
    assert out, "direct-lvm is installed as a Debian package"
    assert host.run("python3 -m pip --version").rc != 0, "pip must not be in the image"


def test_cloud_init_status_done_without_errors(host):
    # 20.4 knows no "degraded": done, no errors in result.json, no WARNING in the log
    out = host.check_output("cloud-init status --long")
    assert re.search(r"^status: done$", out, re.M), out
    assert "error" not in out.lower(), out
    result = json.loads(host.file("/var/lib/cloud/data/result.json").content_string)
    assert result["v1"]["errors"] == [], result
    bad = [ln for ln in LOG.read_text().splitlines()
           if re.search(r"\[(WARNING|ERROR|CRITICAL)\]|Traceback", ln)]  # fmt: skip
    assert bad == [], "\n".join(bad)


def test_module_ran_in_the_init_stage(host):
    init = this_boot_log().split("running 'modules:config'")[0]
    assert re.search(r"Running module direct_lvm .* with frequency always", init), init[-3000:]
    assert "step(s) applied and verified" in init, init[-3000:]
    assert "+ vgcreate --addtag direct_lvm docker" in init


def test_pool_made_by_cloud_init_with_our_tag(host):
    lv = pool_report(host)
    assert lv["lv_attr"].startswith("t") and lv["seg_monitor"] == "monitored", lv
    assert int(lv["chunk_size"]) == 512 * 1024 and lv["zero"] == "0", lv
    assert lv["lv_profile"] == "docker-thinpool" and "direct_lvm" in lv["lv_tags"], lv
    vg_tags = host.check_output("vgs --noheadings -o vg_tags docker").strip()
    assert "direct_lvm" in vg_tags.split(",")
    FIRST_BOOT_STATE.write_text(json.dumps({"lv_uuid": lv["lv_uuid"]}))


def test_docker_started_after_cloud_init_on_the_pool(host):
    assert_docker_on_pool(host)
    assert not host.file("/var/lib/docker/devicemapper/devicemapper/data").exists
    ci = host.check_output(
        "systemctl show -p ExecMainExitTimestampMonotonic --value cloud-init.service"
    )
    dk = host.check_output("systemctl show -p ExecMainStartTimestampMonotonic --value docker")
    assert 0 < int(ci) < int(dk)


def test_docker_run(host):
    host.check_output(
        "mkdir -p /tmp/r/bin && cp /bin/busybox /tmp/r/bin/ && ln -sf busybox /tmp/r/bin/sh && "
        "tar -C /tmp/r -c . | docker import - dl/busybox"
    )
    out = host.check_output("docker run --rm --network none dl/busybox sh -c 'echo ok'")
    assert out.strip() == "ok"


@pytest.mark.parametrize("carrier", ["ci-guest", "ci-guest-file", "ci-containerd",
                                     "ci-containerd-file"])  # fmt: skip
def test_both_carriers_pass_cloud_init_20_4_schema(host, carrier):
    # 20.4 has `cloud-init devel schema` (the top-level `schema` command came in 22.2)
    r = host.run(f"cloud-init devel schema --config-file /job/rendered/{carrier}/user-data.yaml")
    assert r.rc == 0 and "Valid cloud-config" in r.stdout, r.stdout + r.stderr
