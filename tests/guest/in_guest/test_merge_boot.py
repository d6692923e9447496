"""Multi-part user-data: a cloud-config part with its own write_files (no merge_how), then
our part rendered by `direct-lvm render` (file carrier, merge_how appending lists). Both
files arrive, the cloud-init module makes the pool, and direct-lvm.service (also enabled)
says the module did the work this boot and does nothing."""

import json
import re

import pytest
from boot_helpers import SERVICE, changing_commands, record, service_journal, unit_props
from cloudinit_helpers import (
    assert_docker_on_pool,
    pool_report,
    this_boot_log,
    wait_for_cloud_init,
    wait_for_docker,
)


@pytest.fixture(scope="module", autouse=True)
def settled(host):
    wait_for_cloud_init(host)
    wait_for_docker(host)


def test_both_parts_files_arrived(host):
    assert host.file("/etc/dl-other-part.conf").content_string == "from the other part\n"
    assert "devices:" in host.file("/etc/direct-lvm/config.yaml").content_string


def test_the_module_made_the_pool_from_the_file(host):
    log = this_boot_log()
    init = log.split("running 'modules:config'")[0]
    assert re.search(r"direct-lvm \(cloud-init module\): docker/thinpool: \d+ step\(s\) "
                     r"applied and verified", init), init[-3000:]  # fmt: skip
    lv = pool_report(host)
    assert lv["lv_attr"].startswith("t") and "direct_lvm" in lv["lv_tags"]
    assert_docker_on_pool(host)
    rec = record(host)
    assert rec["by"] == "cloud-init module" and rec["result"].startswith("ok: "), rec


def test_the_service_ran_after_it_and_did_nothing(host):
    props = unit_props(host, SERVICE, "ActiveState", "Result", "ConditionResult")
    assert props == {"ActiveState": "active", "Result": "success", "ConditionResult": "yes"}
    journal = service_journal(host)
    assert re.search(r"^direct-lvm \(direct-lvm\.service\): already done this boot by cloud-init "
                     r"module at \S+ \(ok: \d+ step\(s\) applied\); nothing to do$", journal,
                     re.M), journal  # fmt: skip
    assert changing_commands(journal) == [], journal


def test_cloud_init_clean_and_the_merged_config_valid(host):
    out = host.check_output("cloud-init status --long")
    assert re.search(r"^status: done$", out, re.M) and "error" not in out.lower(), out
    result = json.loads(host.file("/var/lib/cloud/data/result.json").content_string)
    assert result["v1"]["errors"] == [], result
    log = this_boot_log()
    bad = [ln for ln in log.splitlines() if re.search(r"\[(WARNING|ERROR|CRITICAL)\]", ln)]
    assert bad == [], "\n".join(bad)
    # the merged cloud-config (merge_how included) against cloud-init's own schema
    r = host.run("cloud-init schema --system")
    assert r.rc == 0, r.stdout + r.stderr
