"""First boot of an image set up with `direct-lvm image-setup --no-cloud-init` (cloud-init
disabled on the kernel command line), config in /etc/direct-lvm/config.yaml, docker
enabled: direct-lvm.service makes the pool before docker starts."""

import json
import re

import pytest
from boot_helpers import (
    SERVICE,
    STATE,
    docker_started_after_service,
    record,
    service_journal,
    unit_props,
    wait_for_service_done,
)
from cloudinit_helpers import assert_docker_on_pool, pool_report, wait_for_docker


@pytest.fixture(scope="module", autouse=True)
def settled(host):
    wait_for_service_done(host)
    wait_for_docker(host)


def test_cloud_init_did_not_run(host):
    assert not host.file("/etc/cloud/cloud.cfg.d/90_direct_lvm.cfg").exists
    assert unit_props(host, "cloud-init.service", "ActiveState")["ActiveState"] != "active"
    assert "cloud-init module" not in service_journal(host)


def test_the_service_made_the_pool(host):
    props = unit_props(host, SERVICE, "ActiveState", "Result", "ExecMainStatus")
    assert props == {"ActiveState": "active", "Result": "success", "ExecMainStatus": "0"}
    journal = service_journal(host)
    assert re.search(r"^direct-lvm \(direct-lvm\.service\): docker/thinpool: \d+ step\(s\) "
                     r"applied and verified", journal, re.M), journal  # fmt: skip
    assert "+ vgcreate --addtag direct_lvm docker" in journal
    lv = pool_report(host)
    assert lv["lv_attr"].startswith("t") and lv["seg_monitor"] == "monitored"
    assert "direct_lvm" in lv["lv_tags"]
    rec = record(host)
    assert rec["by"] == "direct-lvm.service" and rec["result"].startswith("ok: ")
    with open(STATE, "w") as f:
        json.dump({"lv_uuid": lv["lv_uuid"]}, f)


def test_the_first_boot_wrote_the_storage_options_without_a_daemon_reload(host):
    """image-setup baked docker's drop-in, which systemd loaded at boot: the first boot
    writes only the EnvironmentFile it reads (issue 13)."""
    journal = service_journal(host)
    assert "+ write /etc/direct-lvm/docker-storage.env" in journal, journal
    assert "daemon-reload" not in journal, journal


def test_docker_started_after_it_on_the_pool(host):
    docker_started_after_service(host)
    assert_docker_on_pool(host)
    assert not host.file("/var/lib/docker/overlay2").exists


def test_runtime_drop_ins_order_after_the_service(host):
    for unit in ("docker", "containerd"):
        conf = host.file(f"/etc/systemd/system/{unit}.service.d/10-direct-lvm-order.conf")
        assert "After=direct-lvm.service" in conf.content_string
    after = host.check_output("systemctl show -p After --value docker.service").split()
    assert SERVICE in after


def test_a_second_run_this_boot_says_who_did_it_and_does_nothing(host):
    r = host.run("direct-lvm boot")
    assert r.rc == 0, r.stderr
    assert re.search(r"direct-lvm \(direct-lvm\.service\): already done this boot by "
                     r"direct-lvm\.service at \S+ \(ok: \d+ step\(s\) applied\); nothing to do",
                     r.stderr), r.stderr  # fmt: skip
    assert "+ " not in r.stderr


def test_status_shows_the_pool(host):
    out = host.check_output("direct-lvm status")
    assert out.startswith("docker/thinpool ") and "no config" not in out
    assert json.loads(host.check_output("direct-lvm status --json"))["config_file"] == (
        "/etc/direct-lvm/config.yaml"
    )
