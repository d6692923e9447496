"""`direct-lvm reset` on real LVM and docker, in file order in one boot: apply on two
blank disks (A, B) with docker's earlier overlay2 storage taken over (a backup) and a
container created; reset refused while the container exists; reset --force undoes
everything of ours (disks blank, files gone, backup kept and listed) and leaves the
foreign ext4 disk F byte for byte as it was; apply again gives a fresh pool. A VG that
is not ours is refused even with --force. Last, docker-overlay2 on the same disks: reset
unmounts and disables its mount unit and removes its LV."""

import json
import re

from cloudinit_helpers import wait_for

A, B = "/dev/disk/by-id/virtio-dl-ra", "/dev/disk/by-id/virtio-dl-rb"
F = "/dev/disk/by-id/virtio-dl-rf"
POOL = "docker/thinpool"
PROFILE = "/etc/lvm/profile/docker-thinpool.profile"
DROPIN = "/etc/systemd/system/docker.service.d/direct-lvm.conf"
RECORD = "/var/lib/direct-lvm/devices.json"
LAST_APPLY = "/var/lib/direct-lvm/last-apply.json"  # status --format prometheus
ENV = "/etc/direct-lvm/docker-storage.env"  # the storage options the drop-in reads
OURS = (PROFILE, ENV, DROPIN, RECORD, LAST_APPLY)
SEEN = {}  # what earlier tests saw, for later ones


def sha(host, path):
    return host.check_output(f"sha256sum {path}").split()[0]


def docker_answers(host):
    return host.run("docker info --format '{{.Driver}}'").rc == 0


def lvm_view(host):
    return host.check_output("lvs -a --noheadings -o vg_name,lv_name,lv_uuid,lv_tags; "
                             "pvs --noheadings -o pv_name,vg_name")  # fmt: skip


def state(host):
    """What a refused or plan-only reset must leave as it is."""
    return {
        "lvm": lvm_view(host),
        "files": {p: host.file(p).exists and host.file(p).content_string for p in OURS},
        "docker": host.run("systemctl is-active docker.service").stdout.strip(),
        "containers": host.check_output("docker ps -aq --no-trunc"),
        "root": host.check_output("ls -a /var/lib/docker"),
        "backups": host.check_output("ls -d /var/lib/docker.direct-lvm-backup-*"),
    }


def blank(host, dev):
    out = host.check_output(f"wipefs --no-act --json {dev}")
    return not out.strip() or json.loads(out).get("signatures") == []


def test_setup_apply_with_a_takeover_and_a_container(host, cfg):
    SEEN["f_sha"] = sha(host, F)
    # docker first runs on overlay2 with an image: apply must move that storage aside
    host.check_output("systemctl start docker")
    wait_for(lambda: docker_answers(host), 120, "dockerd to answer")
    host.check_output(
        "rm -rf /tmp/r && mkdir -p /tmp/r/bin && cp /bin/busybox /tmp/r/bin/ && "
        "ln -s busybox /tmp/r/bin/sh && tar -C /tmp/r -c . | docker import - dl/busybox"
    )
    r = host.run(f"direct-lvm apply {cfg('reset')}")
    assert r.rc == 0, r.stderr
    (backup,) = host.check_output("ls -d /var/lib/docker.direct-lvm-backup-*").split()
    SEEN["backup"] = backup
    SEEN["backup_ls"] = host.check_output(f"ls -R {backup} | sha256sum")
    host.check_output(
        "tar -C /tmp/r -c . | docker import - dl/busybox && "
        "docker create --name keep --network none dl/busybox sh"
    )
    SEEN["uuid"] = json.loads(host.check_output(
        f"lvs --reportformat json -o lv_uuid {POOL}"))["report"][0]["lv"][0]["lv_uuid"]  # fmt: skip
    assert all(host.file(p).exists for p in OURS)


def test_reset_without_yes_prints_the_plan_and_changes_nothing(host, cfg):
    before = state(host)
    r = host.run(f"direct-lvm reset {cfg('reset')}")
    assert r.rc == 0, r.stderr
    assert "containers exist" in r.stdout and "reset --yes refuses" in r.stdout, r.stdout
    for line in (
        "systemctl stop docker.socket docker.service",
        "lvremove --yes docker/thinpool",
        "vgremove --yes docker",
        "nothing changed: run again with --yes",
    ):
        assert line in r.stdout, r.stdout
    assert re.search(r"^pvremove --yes /dev/vd[a-z] /dev/vd[a-z]$", r.stdout, re.M), r.stdout
    assert f"kept: {SEEN['backup']}" in r.stdout
    j = json.loads(host.check_output(f"direct-lvm reset --force --json {cfg('reset')}"))
    assert j["format"] == 1 and j["applied"] is False and j["kept"] == [SEEN["backup"]]
    assert state(host) == before


def test_reset_is_refused_while_a_container_exists(host, cfg):
    before = state(host)
    cid = host.check_output("docker ps -aq --no-trunc --filter name=keep").strip()
    r = host.run(f"direct-lvm reset --yes {cfg('reset')}")
    assert r.rc == 2, (r.stdout, r.stderr)
    assert "containers exist" in r.stderr and cid in r.stderr and "--force" in r.stderr
    assert "Traceback" not in r.stderr
    assert state(host) == before


def test_reset_force_removes_only_ours(host, cfg):
    r = host.run(f"direct-lvm -v reset --yes --force {cfg('reset')}")
    assert r.rc == 0, (r.stdout, r.stderr)
    # every change logged as a pasteable shell line
    assert re.search(r"^direct-lvm: .*\+ lvremove --yes docker/thinpool$", r.stderr, re.M), r.stderr
    assert re.search(r"^direct-lvm: .*\+ wipefs --all /dev/vd[a-z] /dev/vd[a-z]$", r.stderr,
                     re.M), r.stderr  # fmt: skip
    assert "done and verified" in r.stdout
    assert f"kept: {SEEN['backup']}" in r.stdout
    assert "left stopped" in r.stdout and "systemctl start docker.socket docker.service" in r.stdout
    SEEN["reset_out"] = r.stdout
    assert host.run("vgs docker").rc != 0
    pvs = host.check_output("pvs --noheadings -o pv_name")
    for dev in (A, B):
        real = host.check_output(f"readlink -f {dev}").strip()
        assert real not in pvs
        assert blank(host, dev), host.check_output(f"wipefs --no-act {dev}")
        assert host.check_output(f"lsblk -no FSTYPE {dev}").strip() == ""
    for p in OURS:
        assert not host.file(p).exists, p
    assert host.run("systemctl is-active docker.service docker.socket").stdout.split() == [
        "inactive", "inactive"]  # fmt: skip
    # the takeover's backup is untouched; docker's metadata about the removed pool was
    # moved aside next to it, so docker starts clean
    assert host.check_output(f"ls -R {SEEN['backup']} | sha256sum") == SEEN["backup_ls"]
    assert not host.file("/var/lib/docker").exists
    (moved,) = re.findall(r"moved aside \(kept\): (\S+)", r.stdout)
    assert host.file(f"{moved}/devicemapper").is_directory
    assert "docker-thinpool" not in host.check_output("dmsetup ls")
    assert sha(host, F) == SEEN["f_sha"]


def test_a_second_reset_has_nothing_to_do(host, cfg):
    r = host.run(f"direct-lvm reset --yes {cfg('reset')}")
    assert r.rc == 0, r.stderr
    assert "nothing to do" in r.stdout
    assert SEEN["backup"] in r.stdout


def test_apply_again_makes_a_fresh_pool_docker_uses(host, cfg):
    r = host.run(f"direct-lvm apply {cfg('reset')}")
    assert r.rc == 0, r.stderr
    uuid = json.loads(host.check_output(
        f"lvs --reportformat json -o lv_uuid {POOL}"))["report"][0]["lv"][0]["lv_uuid"]  # fmt: skip
    assert uuid != SEEN["uuid"]
    info = host.check_output("docker info")
    assert re.search(r"^\s*Storage Driver: devicemapper$", info, re.M), info
    assert re.search(r"^\s*Pool Name: docker-thinpool$", info, re.M), info
    assert host.check_output("docker ps -aq").strip() == ""  # a fresh docker
    r = host.run(f"direct-lvm apply {cfg('reset')}")
    assert r.rc == 0 and "nothing changed" in r.stderr, r.stderr
    assert sha(host, F) == SEEN["f_sha"]


def test_a_vg_that_is_not_ours_is_refused_even_with_force(host, cfg):
    loop = host.check_output("truncate -s 64M /var/tmp/hand.img && "
                             "losetup -f --show /var/tmp/hand.img").strip()  # fmt: skip
    try:
        host.check_output(f"pvcreate -q {loop} && vgcreate -q handmade {loop}")
        r = host.run(f"direct-lvm reset --yes --force {cfg('reset-handmade')}")
        assert r.rc == 2, (r.stdout, r.stderr)
        assert "'handmade' has no 'direct_lvm' tag" in r.stderr, r.stderr
        assert host.run("vgs handmade").rc == 0
        # tagged, but holding an LV that is not ours: still refused, the LV named
        host.check_output("vgchange -q --addtag direct_lvm handmade && "
                          "lvcreate -q -y -n data -L 8M handmade")  # fmt: skip
        r = host.run(f"direct-lvm reset --yes --force {cfg('reset-handmade')}")
        assert r.rc == 2, (r.stdout, r.stderr)
        assert "handmade/data" in r.stderr, r.stderr
        assert host.run("lvs handmade/data").rc == 0
    finally:
        host.run(f"vgremove -q -ff -y handmade; pvremove -q -y {loop}; losetup -d {loop}")


def test_overlay2_reset_unmounts_and_removes_its_lv_and_units(host, cfg):
    """docker-overlay2 on the same disks: reset stops docker, unmounts and disables
    var-lib-docker.mount, removes the LV, VG and PVs and its unit and drop-in."""
    r = host.run(f"direct-lvm reset --yes {cfg('reset')}")  # the fresh pool, no containers
    assert r.rc == 0, (r.stdout, r.stderr)
    r = host.run(f"direct-lvm apply {cfg('reset-overlay2')}")
    assert r.rc == 0, r.stderr
    assert host.mount_point("/var/lib/docker").exists
    host.check_output(
        "tar -C /tmp/r -c . | docker import - dl/busybox && "
        "docker create --name keep --network none dl/busybox sh"
    )
    r = host.run(f"direct-lvm reset --yes {cfg('reset-overlay2')}")
    assert r.rc == 2 and "containers exist" in r.stderr, (r.stdout, r.stderr)
    assert host.mount_point("/var/lib/docker").exists
    r = host.run(f"direct-lvm reset --yes --force {cfg('reset-overlay2')}")
    assert r.rc == 0, (r.stdout, r.stderr)
    assert "done and verified" in r.stdout
    assert not host.mount_point("/var/lib/docker").exists
    unit = "/etc/systemd/system/var-lib-docker.mount"
    wants = "/etc/systemd/system/local-fs.target.wants/var-lib-docker.mount"
    for p in (unit, wants, DROPIN, LAST_APPLY):
        assert not host.file(p).exists, p
    assert host.run("vgs docker").rc != 0
    for dev in (A, B):
        assert blank(host, dev), host.check_output(f"wipefs --no-act {dev}")
    assert host.check_output("systemctl show -p LoadState var-lib-docker.mount").strip() in (
        "LoadState=not-found", "LoadState=masked")  # fmt: skip
    assert sha(host, F) == SEEN["f_sha"]


def test_containerd_reset_removes_the_pool_and_only_our_import(host, cfg):
    """containerd-devmapper on the same disks: a container on devmapper snapshots
    refuses reset; --force stops containerd, removes the snapshot devices, the pool, VG
    and PVs, the fragment and drop-in, and gives config.toml back as it was."""
    from pathlib import Path

    from oci_helpers import REF, build_oci_archive

    conf = host.file("/etc/containerd/config.toml")
    orig = conf.content_string if conf.exists else None
    r = host.run(f"direct-lvm apply {cfg('reset-containerd')}")
    assert r.rc == 0, r.stderr
    archive = build_oci_archive(Path("/var/tmp/busybox-oci.tar"))
    host.check_output(f"ctr images import --snapshotter devmapper {archive}")
    host.check_output(f"ctr containers create --snapshotter devmapper {REF} dl-keep")
    r = host.run(f"direct-lvm reset --yes {cfg('reset-containerd')}")
    assert r.rc == 2 and "default/dl-keep" in r.stderr, (r.stdout, r.stderr)
    r = host.run(f"direct-lvm reset --yes --force {cfg('reset-containerd')}")
    assert r.rc == 0, (r.stdout, r.stderr, host.check_output("dmsetup table"))
    assert "done and verified" in r.stdout
    assert host.run("vgs containerd").rc != 0
    assert "containerd-thin--pool" not in host.check_output("dmsetup ls")
    for p in ("/etc/containerd/conf.d/direct-lvm.toml",
              "/etc/systemd/system/containerd.service.d/direct-lvm.conf"):  # fmt: skip
        assert not host.file(p).exists, p
    if orig is None:
        assert not conf.exists
    else:
        assert conf.content_string == orig
    for dev in (A, B):
        assert blank(host, dev), host.check_output(f"wipefs --no-act {dev}")
    assert host.run("systemctl is-active containerd.service").stdout.strip() == "inactive"
    assert sha(host, F) == SEEN["f_sha"]
