"""First boot of an image baked with `direct-lvm image-setup`, launched with user-data
rendered by `direct-lvm render` through a NoCloud seed: cloud-init alone makes the pool."""

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


def test_cloud_init_status_is_clean(host):
    out = host.check_output("cloud-init status --long")
    assert re.search(r"^status: done$", out, re.M), out
    assert "degraded" not in out and "error" not in out.lower(), out
    result = json.loads(host.file("/var/lib/cloud/data/result.json").content_string)
    assert result["v1"]["errors"] == [], result
    assert "recoverable_errors" not in result["v1"] or not result["v1"]["recoverable_errors"]


def test_no_warning_from_cloud_init_about_our_key(host):
    log = this_boot_log()
    assert "direct_lvm" in log
    bad = [ln for ln in log.splitlines() if re.search(r"\[(WARNING|ERROR|CRITICAL)\]", ln)]
    assert bad == [], "\n".join(bad)


def test_module_ran_in_the_init_stage(host):
    log = this_boot_log()
    init = log.split("running 'modules:config'")[0]
    assert re.search(r"Running module direct_lvm .* with frequency always", init), init[-3000:]
    assert "step(s) applied and verified" in init
    assert "+ vgcreate --addtag direct_lvm docker" in init


def test_pool_made_by_cloud_init(host):
    lv = pool_report(host)
    assert lv["lv_attr"].startswith("t") and lv["seg_monitor"] == "monitored"
    assert int(lv["chunk_size"]) == 512 * 1024 and lv["zero"] == "0"
    assert lv["lv_profile"] == "docker-thinpool" and "direct_lvm" in lv["lv_tags"]
    assert host.file("/etc/lvm/profile/docker-thinpool.profile").exists
    FIRST_BOOT_STATE.write_text(json.dumps({"lv_uuid": lv["lv_uuid"]}))


def test_docker_started_on_the_pool_never_elsewhere(host):
    assert_docker_on_pool(host)
    assert not host.file("/var/lib/docker/overlay2").exists
    assert not host.file("/var/lib/docker/devicemapper/devicemapper/data").exists
    assert host.run("ls -d /var/lib/docker.direct-lvm-backup-*").rc != 0  # nothing to take over
    # docker started after cloud-init's init stage finished
    ci = host.check_output(
        "systemctl show -p ExecMainExitTimestampMonotonic --value cloud-init.service"
    )
    dk = host.check_output("systemctl show -p ExecMainStartTimestampMonotonic --value docker")
    assert 0 < int(ci) < int(dk)


def test_vendor_unit_untouched_and_units_verify(host):
    assert "docker.service" not in host.run("dpkg --verify docker.io").stdout
    assert host.run("systemd-analyze verify docker.service").rc == 0


def test_docker_run(host):
    host.check_output(
        "mkdir -p /tmp/r/bin && cp /bin/busybox /tmp/r/bin/ && ln -sf busybox /tmp/r/bin/sh && "
        "tar -C /tmp/r -c . | docker import - dl/busybox"
    )
    out = host.check_output("docker run --rm --network none dl/busybox sh -c 'echo ok'")
    assert out.strip() == "ok"


@pytest.mark.parametrize("env", sorted(p.name for p in __import__("pathlib").Path(
    "/job/rendered").iterdir()))  # fmt: skip
def test_rendered_env_passes_cloud_init_schema_and_systemd_verify(host, env, tmp_path):
    root = f"/job/rendered/{env}"
    r = host.run(f"cloud-init schema --config-file {root}/user-data.yaml")
    assert r.rc == 0 and "Valid cloud-config" in r.stdout, r.stdout + r.stderr
    # the drop-ins beside the real units (and our mount unit), through systemd's parser
    units = tmp_path / "units"
    rendered = __import__("pathlib").Path(root) / "etc/systemd/system"
    checked = []
    for dropins in sorted(rendered.glob("*.service.d")):
        unit = dropins.name.removesuffix(".d")
        (units / dropins.name).mkdir(parents=True)
        host.check_output(f"cp /lib/systemd/system/{unit} {units}/")
        host.check_output(f"cp {dropins}/*.conf {units}/{dropins.name}/")
        checked.append(unit)
    for mount in rendered.glob("*.mount"):
        host.check_output(f"cp {mount} {units}/")
        checked.append(mount.name)
    assert checked, f"no units rendered for {env}"
    paths = " ".join(f"{units}/{u}" for u in checked)
    r = host.run(f"SYSTEMD_UNIT_PATH={units}: systemd-analyze verify {paths}")
    assert r.rc == 0, r.stderr
