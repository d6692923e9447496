"""Second boot of the same root and disks, booted through direct-lvm.service: nothing
changed, no changing command ran, docker on the same pool."""

import json
import re

import pytest
from boot_helpers import (
    STATE,
    changing_commands,
    docker_started_after_service,
    record,
    service_journal,
    wait_for_service_done,
)
from cloudinit_helpers import assert_docker_on_pool, pool_report, wait_for_docker


@pytest.fixture(scope="module", autouse=True)
def settled(host):
    wait_for_service_done(host)
    wait_for_docker(host)


def lvm2_monitor_failed_on_our_pool(host):
    """This boot's lvm2-monitor.service could not register the (already active) pool with
    dmeventd: under heavy TCG load dmeventd can start too late for it ("No input from
    event server"). The pool is then really not monitored, and re-enabling monitoring is
    the one change the boot path must make."""
    out = host.check_output("journalctl -b --no-pager -o cat -u lvm2-monitor.service")
    return "Failed to monitor docker/thinpool" in out


def test_the_service_changed_nothing(host):
    journal = service_journal(host)
    changes = changing_commands(journal)
    if changes == ["+ lvchange --monitor y docker/thinpool"] and lvm2_monitor_failed_on_our_pool(
        host
    ):
        assert record(host)["result"] == "ok: 1 step(s) applied"
        return
    assert re.search(r"^direct-lvm \(direct-lvm\.service\): docker/thinpool matches the "
                     r"config; nothing changed", journal, re.M), journal  # fmt: skip
    assert changes == [], journal
    assert record(host)["result"] == "ok: nothing changed"


def test_same_pool_and_docker_on_it(host):
    first = json.loads(host.file(STATE).content_string)
    assert pool_report(host)["lv_uuid"] == first["lv_uuid"]
    docker_started_after_service(host)
    assert_docker_on_pool(host)
