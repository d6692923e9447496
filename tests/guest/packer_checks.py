"""testinfra checks of a booted instance of a Packer-baked image (test_packer.py runs each
as its own test, over the paramiko backend). Each check takes the testinfra host and
the Instance facts it needs; failures say what was found."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DROPIN = "/etc/systemd/system/docker.service.d/direct-lvm.conf"
ENV = "/etc/direct-lvm/docker-storage.env"
PROFILE = "/etc/lvm/profile/docker-thinpool.profile"
DOCKER_FLAGS = (
    "--storage-driver=devicemapper",
    "--storage-opt=dm.thinpooldev=/dev/mapper/docker-thinpool",
    "--storage-opt=dm.use_deferred_removal=true",
    "--storage-opt=dm.use_deferred_deletion=true",
)


@dataclass(frozen=True)
class Facts:
    """What the checks compare the instance with."""

    instance_id: str  # in the NoCloud seed the instance booted with
    bake_public_key: str  # the key Packer logged in with during the bake


def pool_report(host: Any) -> dict[str, str]:
    out = host.check_output(
        "lvs --reportformat json --units b --nosuffix --binary "
        "-o lv_attr,chunk_size,zero,lv_profile,seg_monitor,lv_tags,vg_tags docker/thinpool"
    )
    lv: dict[str, str] = json.loads(out)["report"][0]["lv"][0]
    return lv


def thinpool_attributes(host: Any, facts: Facts) -> None:
    lv = pool_report(host)
    assert lv["lv_attr"].startswith("t"), f"not a thin pool: {lv}"
    assert int(lv["chunk_size"]) == 512 * 1024, f"chunk size: {lv}"
    assert lv["zero"] == "0", f"zeroing is on: {lv}"
    assert "direct_lvm" in lv["lv_tags"].split(","), f"no direct_lvm tag: {lv}"


def profile_file_and_attachment(host: Any, facts: Facts) -> None:
    text = host.file(PROFILE).content_string
    assert re.search(r"thin_pool_autoextend_threshold\s*=\s*80\b", text), text
    assert re.search(r"thin_pool_autoextend_percent\s*=\s*20\b", text), text
    assert pool_report(host)["lv_profile"] == "docker-thinpool"


def pool_monitored(host: Any, facts: Facts) -> None:
    assert pool_report(host)["seg_monitor"] == "monitored"


def docker_on_the_pool(host: Any, facts: Facts) -> None:
    info = host.check_output("docker info")
    assert re.search(r"^\s*Storage Driver: devicemapper$", info, re.M), info
    assert re.search(r"^\s*Pool Name: docker-thinpool$", info, re.M), info
    assert "Data loop file" not in info, info


def docker_storage_only_on_the_pool(host: Any, facts: Facts) -> None:
    assert host.file("/var/lib/docker/devicemapper").is_directory
    for other in ("overlay2", "vfs", "aufs", "btrfs"):
        assert not host.file(f"/var/lib/docker/{other}").exists, other


def dropin_content(host: Any, facts: Facts) -> None:
    text = host.file(DROPIN).content_string
    starts = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
    assert starts[0] == "ExecStart=", f"the vendor ExecStart is not reset:\n{text}"
    # the flags come from the EnvironmentFile the static drop-in reads (issue 13)
    assert starts[-1].endswith(" $DIRECT_LVM_DOCKER_STORAGE"), text
    env = host.file(ENV).content_string
    assert all(flag in env for flag in DOCKER_FLAGS), env
    pid = host.check_output("systemctl show -p MainPID --value docker.service")
    running = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/cmdline").splitlines()
    assert all(running.count(flag) == 1 for flag in DOCKER_FLAGS), running


def services_active_and_enabled(host: Any, facts: Facts) -> None:
    units = ("docker.service", "docker.socket", "containerd.service", "dm-event.socket",
             "lvm2-monitor.service")  # fmt: skip
    wrong = {u: (s.is_enabled, s.is_running) for u in units
             if not ((s := host.service(u)).is_enabled and s.is_running)}  # fmt: skip
    assert wrong == {}, f"(enabled, active) of the units that are not both: {wrong}"


def vendor_unit_unchanged(host: Any, facts: Facts) -> None:
    verify = host.run("dpkg --verify docker.io")
    assert "docker.service" not in verify.stdout + verify.stderr, verify.stdout
    assert host.file("/lib/systemd/system/docker.service").exists


def pool_made_before_docker_started(host: Any, facts: Facts) -> None:
    init_done = int(host.check_output(
        "systemctl show -p ExecMainExitTimestampMonotonic --value cloud-init.service"))  # fmt: skip
    docker = int(host.check_output(
        "systemctl show -p ExecMainStartTimestampMonotonic --value docker.service"))  # fmt: skip
    assert 0 < init_done < docker, f"cloud-init init stage ended at {init_done}, docker at {docker}"
    log = host.file("/var/log/cloud-init.log").content_string
    init = log.split("running 'modules:config'")[0]
    assert re.search(r"Running module direct_lvm .* with frequency always", init), init[-2000:]


def cloud_init_clean_run(host: Any, facts: Facts) -> None:
    result = json.loads(host.file("/var/lib/cloud/data/result.json").content_string)
    assert result["v1"]["errors"] == [], result
    status = host.check_output("cloud-init status --long")
    assert re.search(r"^status: done$", status, re.M), status


def boots_as_a_new_instance(host: Any, facts: Facts) -> None:
    """Nothing of the bake's instance is left: only this instance's cloud-init state."""
    iid = host.file("/var/lib/cloud/data/instance-id").content_string.strip()
    assert iid == facts.instance_id
    instances = host.check_output("ls /var/lib/cloud/instances").split()
    assert instances == [facts.instance_id], f"cloud-init state of other instances: {instances}"
    log = host.file("/var/log/cloud-init.log").content_string
    assert len(re.findall(r"running 'init-local'", log)) == 1, "the bake's log was kept"
    assert re.fullmatch(r"[0-9a-f]{32}\n", host.file("/etc/machine-id").content_string)


def ssh_host_keys_made_on_this_boot(host: Any, facts: Facts) -> None:
    boot = int(host.check_output("awk '/^btime/ {print $2}' /proc/stat"))
    keys = host.check_output("ls /etc/ssh/ssh_host_*_key").split()
    assert keys, "no ssh host keys"
    older = [k for k in keys if host.file(k).mtime.timestamp() < boot]
    assert older == [], f"ssh host keys from before this boot (the bake's?): {older}"


def bake_login_removed(host: Any, facts: Facts) -> None:
    key = facts.bake_public_key.split()[1]
    found = host.run(f"grep -rl -F -e {key} /root /home /etc/ssh")
    assert found.rc == 1 and not found.stdout, f"Packer's key is still there: {found.stdout}"
    assert not host.run("ls /tmp/direct-lvm_*.deb").stdout, "the bake's .deb was left in /tmp"


def installed_from_the_deb_without_pip(host: Any, facts: Facts) -> None:
    """direct-lvm is the Debian package (apt-get install ./deb), on the archive's
    libraries: no pip, nothing of ours under /usr/local."""
    status = host.check_output("dpkg-query -W -f '${Status}' direct-lvm")
    assert status == "install ok installed", status
    assert host.run("dpkg-query -W -f '${Status}' python3-pip").stdout != "install ok installed"
    assert host.run("python3 -m pip --version").rc != 0, "pip is in the image"
    owner = host.check_output("dpkg -S /usr/bin/direct-lvm")
    assert owner.startswith("direct-lvm:"), owner
    where = host.check_output("python3 -c 'import cc_direct_lvm; print(cc_direct_lvm.__file__)'")
    assert where.startswith("/usr/lib/python3/dist-packages/"), where
    local = host.run("ls -d /usr/local/lib/python3*/dist-packages/direct_lvm*")
    assert local.rc != 0, f"a pip install in /usr/local: {local.stdout}"


CHECKS: tuple[Callable[[Any, Facts], None], ...] = (
    cloud_init_clean_run,
    thinpool_attributes,
    profile_file_and_attachment,
    pool_monitored,
    docker_on_the_pool,
    docker_storage_only_on_the_pool,
    dropin_content,
    services_active_and_enabled,
    vendor_unit_unchanged,
    pool_made_before_docker_started,
    boots_as_a_new_instance,
    ssh_host_keys_made_on_this_boot,
    bake_login_removed,
    installed_from_the_deb_without_pip,
)
