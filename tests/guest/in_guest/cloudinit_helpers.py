"""Shared by the cloud-init in-guest suites (imported by them; not a test module)."""

import json
import re
import time
from pathlib import Path

LOG = Path("/var/log/cloud-init.log")
FIRST_BOOT_STATE = Path("/var/tmp/dl-first-boot.json")


def wait_for(predicate, timeout, what):
    """Poll predicate() until true; fail naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.5)


def wait_for_cloud_init(host):
    host.run("cloud-init status --wait")
    # status --wait can return before the final stage has written its result
    wait_for(lambda: host.file("/var/lib/cloud/data/result.json").exists, 300,
             "cloud-init's result.json")  # fmt: skip


def wait_for_docker(host):
    wait_for(lambda: host.run("docker info --format '{{.Driver}}'").rc == 0, 300,
             "dockerd to answer")  # fmt: skip


def this_boot_log() -> str:
    """cloud-init.log from this boot's first stage on (the log spans boots)."""
    text = LOG.read_text()
    starts = [m.start() for m in re.finditer(r"Cloud-init v\. \S+ running 'init-local'", text)]
    return text[starts[-1] :] if starts else text


def pool_report(host, fields="lv_uuid,lv_attr,chunk_size,zero,lv_profile,seg_monitor,lv_tags"):
    out = host.check_output(
        f"lvs --reportformat json --units b --nosuffix --binary -o {fields} docker/thinpool"
    )
    return json.loads(out)["report"][0]["lv"][0]


def assert_docker_on_pool(host):
    info = host.check_output("docker info")
    assert re.search(r"^\s*Storage Driver: devicemapper$", info, re.M), info
    assert re.search(r"^\s*Pool Name: docker-thinpool$", info, re.M), info
    assert "Data loop file" not in info
