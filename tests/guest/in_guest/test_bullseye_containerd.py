"""bullseye, instance B, first boot: containerd-devmapper (containerd 1.4) through
cloud-init 20.4, which calls the module's handle() with five positional arguments; the
config comes as a write_files file (`render --carrier file`)."""

import json
import re
from pathlib import Path

import pytest
from cloudinit_helpers import LOG, this_boot_log, wait_for
from oci_helpers import REF, build_oci_archive, our_thin_devices, running_container

POOL_DM = "containerd-thin--pool"


@pytest.fixture(scope="module", autouse=True)
def settled(host):
    host.run("cloud-init status --wait")
    wait_for(lambda: host.file("/var/lib/cloud/data/result.json").exists, 300,
             "cloud-init's result.json")  # fmt: skip
    wait_for(lambda: host.run("ctr version").rc == 0, 300, "containerd to answer")


def test_cloud_init_status_done_without_errors(host):
    out = host.check_output("cloud-init status --long")
    assert re.search(r"^status: done$", out, re.M) and "error" not in out.lower(), out
    result = json.loads(host.file("/var/lib/cloud/data/result.json").content_string)
    assert result["v1"]["errors"] == [], result
    bad = [ln for ln in LOG.read_text().splitlines()
           if re.search(r"\[(WARNING|ERROR|CRITICAL)\]|Traceback", ln)]  # fmt: skip
    assert bad == [], "\n".join(bad)


def test_module_made_the_pool_from_the_written_file(host):
    assert Path("/etc/direct-lvm/config.yaml").exists()
    init = this_boot_log().split("running 'modules:config'")[0]
    assert re.search(r"Running module direct_lvm .* with frequency always", init), init[-3000:]
    assert "containerd/thin-pool: " in init and "step(s) applied and verified" in init
    lv = json.loads(host.check_output(
        "lvs --reportformat json -o lv_attr,lv_tags containerd/thin-pool"
    ))["report"][0]["lv"][0]  # fmt: skip
    assert lv["lv_attr"].startswith("t") and "direct_lvm" in lv["lv_tags"], lv


def test_containerd_started_after_cloud_init(host):
    ci = host.check_output(
        "systemctl show -p ExecMainExitTimestampMonotonic --value cloud-init.service"
    )
    ctd = host.check_output(
        "systemctl show -p ExecMainStartTimestampMonotonic --value containerd.service"
    )
    assert 0 < int(ci) < int(ctd)


def test_devmapper_plugin_ok(host):
    out = host.check_output("ctr plugins ls")
    assert re.search(r"^io\.containerd\.snapshotter\.v1\s+devmapper\s+\S+\s+ok\s*$", out, re.M), out
    assert f'pool_name = "{POOL_DM}"' in host.check_output("containerd config dump")


def test_ctr_run_on_devmapper_in_our_pool(host):
    archive = build_oci_archive(Path("/var/tmp/busybox-oci.tar"))
    host.check_output(f"ctr images import --snapshotter devmapper {archive}")
    out = host.check_output(
        f"ctr run --rm --snapshotter devmapper {REF} dl-devmapper sh -c 'echo hello-devmapper'"
    )
    assert out.strip() == "hello-devmapper"
    with running_container(host, "dl-live"):
        thins, major_minor = our_thin_devices(host, POOL_DM)
    assert thins, "no devmapper snapshot devices in our pool while a container ran"
    assert all(t.split()[4] == major_minor for t in thins), (thins, major_minor)
