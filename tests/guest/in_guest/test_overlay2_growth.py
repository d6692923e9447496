"""docker-overlay2 on bookworm's Docker 20.10 (overlay2 works before 25 too), on a loop
device that really grows (losetup --set-capacity, as a resized cloud volume): the LV and
its XFS grow online under a running docker, a run stopped between lvextend and
xfs_growfs is finished by the next one, and a converged run changes nothing."""

import json
import re
from pathlib import Path

BACKING = Path("/var/tmp/dl-ovl.img")
CONFIG = Path("/var/tmp/dl-ovl.yaml")
LV = "/dev/mapper/ovl-docker"
GIB = 1 << 30
STATE: dict[str, str] = {}


def apply(host, env=""):
    return host.run(f"{env} direct-lvm apply {CONFIG}")


def grow_to(host, size):
    host.check_output(f"truncate -s {size} {BACKING}")
    host.check_output(f"losetup --set-capacity {STATE['loop']}")


def xfs_bytes(host):
    fs = json.loads(host.check_output("findmnt --json --bytes -o SOURCE,SIZE /var/lib/docker"))
    (m,) = fs["filesystems"]
    assert m["source"] == LV, m
    return int(m["size"])


def changes(stderr):
    return re.findall(r"^.*\+ (\S+(?: \S+)?)", stderr, re.M)


def test_overlay2_on_a_loop_device(host):
    host.check_output(f"truncate -s 1G {BACKING}")
    STATE["loop"] = host.check_output(f"losetup --find --show {BACKING}").strip()
    CONFIG.write_text(
        f"direct_lvm:\n  runtime: docker-overlay2\n  vg: ovl\n  devices: [{STATE['loop']}]\n"
    )
    r = apply(host)
    assert r.rc == 0, r.stderr
    assert "+ mkfs.xfs -q -n ftype=1 /dev/mapper/ovl-docker" in r.stderr
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert (info["Driver"], info["DockerRootDir"]) == ("overlay2", "/var/lib/docker")
    host.check_output(
        "rm -rf /tmp/ovl-root && mkdir -p /tmp/ovl-root/bin && cp /bin/busybox "
        "/tmp/ovl-root/bin/ && ln -s busybox /tmp/ovl-root/bin/sh && "
        "tar -C /tmp/ovl-root -c . | docker import - dl/ovl"
    )
    STATE["size1"] = str(xfs_bytes(host))
    assert 0.9 * GIB < int(STATE["size1"]) <= GIB


def test_grown_device_grows_lv_and_xfs_online(host):
    pid = host.check_output("systemctl show -p MainPID --value docker.service").strip()
    grow_to(host, "2G")
    r = apply(host)
    assert r.rc == 0, r.stderr
    ran = changes(r.stderr)
    assert ran[:3] == ["pvresize " + STATE["loop"], "lvextend --extents", "xfs_growfs -d"], ran
    assert "mkfs.xfs" not in r.stderr and "systemctl restart" not in r.stderr
    size2 = xfs_bytes(host)
    assert size2 > 1.9 * GIB, (STATE["size1"], size2)
    # docker kept running through it, with its image
    assert host.check_output("systemctl show -p MainPID --value docker.service").strip() == pid
    out = host.check_output("docker run --rm --network none dl/ovl sh -c 'echo grown'")
    assert out.strip() == "grown"


def test_run_stopped_before_xfs_growfs_is_finished_next_time(host):
    grow_to(host, "3G")
    # steps: 1 pvresize, 2 lvextend, 3 xfs_growfs: stop right after the lvextend
    r = apply(host, "DIRECT_LVM_TEST_CRASH_AFTER_STEP=2")
    assert r.rc == 99, r.stderr
    assert xfs_bytes(host) < 2.1 * GIB  # the LV grew, its filesystem did not
    r = apply(host)
    assert r.rc == 0, r.stderr
    assert changes(r.stderr) == ["xfs_growfs -d"], r.stderr
    assert xfs_bytes(host) > 2.9 * GIB


def test_converged_run_changes_nothing(host):
    r = apply(host)
    assert r.rc == 0, r.stderr
    assert "nothing changed" in r.stderr
    assert changes(r.stderr) == [], r.stderr
