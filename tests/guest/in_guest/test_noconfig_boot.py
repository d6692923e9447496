"""An image set up with `direct-lvm image-setup` (and direct-lvm.service enabled too)
boots with user-data that carries no direct-lvm config: a WARNING in cloud-init's log
names where the module looked, `direct-lvm status` says "no config", no disk touched."""

import json
import re

import pytest
from boot_helpers import SERVICE, unit_props
from cloudinit_helpers import this_boot_log, wait_for_cloud_init


@pytest.fixture(scope="module", autouse=True)
def settled(host):
    wait_for_cloud_init(host)


def test_the_module_warns_where_it_looked(host):
    log = this_boot_log()
    warnings = [ln for ln in log.splitlines() if "[WARNING]" in ln]
    ours = [ln for ln in warnings if "direct-lvm (cloud-init module): no config: " in ln]
    assert len(ours) == 1, "\n".join(warnings) or log[-3000:]
    assert (
        "looked at the direct_lvm key of the cloud-config and /etc/direct-lvm/config.yaml"
        in (ours[0])
    )
    assert "/etc/direct-lvm/image-setup.json" in ours[0]


def test_status_says_no_config(host):
    out = host.check_output("direct-lvm status")
    assert out.startswith("no config: no /etc/direct-lvm/config.yaml"), out
    assert json.loads(host.check_output("direct-lvm status --json"))["config_file"] is None


def test_nothing_was_made_and_the_service_did_not_start(host):
    assert host.run("vgs docker").rc != 0
    assert host.check_output("pvs --noheadings -o pv_name").strip() == ""
    props = unit_props(host, SERVICE, "ConditionResult", "ActiveState", "UnitFileState")
    assert props["UnitFileState"] == "enabled", props
    assert props["ConditionResult"] == "no" and props["ActiveState"] == "inactive", props
    assert not host.file("/run/direct-lvm/boot.json").exists
    assert not re.search(r"Running module direct_lvm .* failed", this_boot_log())
