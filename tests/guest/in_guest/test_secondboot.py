"""Second boot of the same disks: the module runs, changes nothing, docker stays put."""

import json
import re

import pytest
from cloudinit_helpers import (
    FIRST_BOOT_STATE,
    assert_docker_on_pool,
    pool_report,
    this_boot_log,
)

pytestmark = pytest.mark.usefixtures("cloud_init_settled")


def test_module_ran_and_changed_nothing(host):
    log = this_boot_log()
    assert re.search(r"Running module direct_lvm .* with frequency always", log)
    assert re.search(r"docker/thinpool matches the config; nothing changed", log), log[-3000:]
    # commands that change something are logged at INFO, reads at DEBUG
    changes = re.findall(r"\[INFO\]: \+ .*", log)
    assert changes == [], changes
    assert not re.search(r"\[(WARNING|ERROR)\]", log), log[-3000:]


def test_same_pool_as_the_first_boot(host):
    first = json.loads(FIRST_BOOT_STATE.read_text())
    assert pool_report(host)["lv_uuid"] == first["lv_uuid"]


def test_docker_still_on_the_pool(host):
    assert_docker_on_pool(host)
    assert host.check_output("docker images --format '{{.Repository}}'").split() == ["dl/busybox"]


def test_cloud_init_status_is_clean(host):
    out = host.check_output("cloud-init status --long")
    assert re.search(r"^status: done$", out, re.M) and "error" not in out.lower(), out
