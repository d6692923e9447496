"""podman on bookworm (podman 4.3, containers-storage 1.43) through the CLI: refusals
first (/etc/containers/storage.conf with another graphroot or driver, another filesystem
mounted at /var/lib/containers/storage), each leaving the blank disk dl-data2 untouched;
then a takeover of a populated graphroot (moved aside, content kept), podman info
naming our LV's mount and the overlay driver, a container run, a no-op second apply, and
online growth when a second disk (dl-data4) joins the VG."""

import json
from pathlib import Path

from lvroot_helpers import GIB, apply, busybox_rootfs, first_mib_sha, mount_of, ran, refused

ROOT = "/var/lib/containers/storage"
LV = "/dev/mapper/pods-containers"
DISK = "/dev/disk/by-id/virtio-dl-data2"
STORAGE_CONF = Path("/etc/containers/storage.conf")
BACKUP_PREFIX = "/var/lib/containers/storage.direct-lvm-backup-"
STATE: dict[str, str] = {}


def untouched(host):
    assert first_mib_sha(DISK) == STATE["sha"]
    assert host.run("vgs pods").rc != 0


def podman_info(host):
    return json.loads(host.check_output("podman info --format json"))


def test_podman_refuses_a_conflicting_storage_conf(host, cfg):
    STATE["sha"] = first_mib_sha(DISK)
    assert not STORAGE_CONF.exists()  # bookworm ships none: built-in defaults
    try:
        STORAGE_CONF.write_text('[storage]\ndriver = "overlay"\ngraphroot = "/srv/pods"\n')
        refused(apply(host, cfg("podman")), "/srv/pods", str(STORAGE_CONF))
        untouched(host)
        STORAGE_CONF.write_text('[storage]\ndriver = "vfs"\n')
        refused(apply(host, cfg("podman")), '"vfs"', str(STORAGE_CONF))
        untouched(host)
    finally:
        STORAGE_CONF.unlink(missing_ok=True)


def test_podman_refuses_another_mount_at_the_graphroot(host, cfg):
    host.check_output(f"mkdir -p {ROOT} && mount -t tmpfs dl-other {ROOT}")
    try:
        refused(apply(host, cfg("podman")), ROOT, "dl-other")
        untouched(host)
    finally:
        host.check_output(f"umount {ROOT}")


def test_podman_takeover_moves_a_populated_graphroot_aside(host, cfg):
    # podman used the root filesystem first and holds an image there
    root = busybox_rootfs(host)
    host.check_output(f"tar -C {root} -c . | podman import - dl/before")
    images = sorted(p.name for p in Path(f"{ROOT}/overlay-images").iterdir())
    Path(f"{ROOT}/dl-marker").write_text("kept\n")
    r = apply(host, cfg("podman"))
    assert r.rc == 0, r.stderr
    assert "mv --no-target-directory" in ran(r.stderr), r.stderr
    assert "+ mkfs.xfs -q -n ftype=1 " + LV in r.stderr
    parent = Path(ROOT).parent
    (backup,) = [str(p) for p in parent.iterdir() if str(p).startswith(BACKUP_PREFIX)]
    assert Path(f"{backup}/dl-marker").read_text() == "kept\n"
    assert sorted(p.name for p in Path(f"{backup}/overlay-images").iterdir()) == images


def test_podman_info_names_our_mount_and_overlay(host):
    source, fstype, size = mount_of(host, ROOT)
    assert (source, fstype) == (LV, "xfs"), (source, fstype)
    STATE["size1"] = str(size)
    assert "ftype=1" in host.check_output(f"xfs_info {ROOT}")
    store = podman_info(host)["store"]
    assert store["graphRoot"] == ROOT, store
    assert store["graphDriverName"] == "overlay", store
    assert "direct-lvm" in STORAGE_CONF.read_text()  # the file is ours
    enabled = host.check_output("systemctl is-enabled var-lib-containers-storage.mount")
    assert enabled.strip() == "enabled"
    assert host.run("systemd-analyze verify var-lib-containers-storage.mount").rc == 0
    # the image from before the takeover is in the backup, not in the new storage
    assert "dl/before" not in host.check_output("podman images")


def test_podman_a_container_runs(host):
    root = busybox_rootfs(host)
    host.check_output(f"tar -C {root} -c . | podman import - dl/busybox")
    out = host.check_output("podman run --rm --network none dl/busybox sh -c 'echo hello-podman'")
    assert out.strip() == "hello-podman"
    layers = host.check_output(f"findmnt --noheadings -o SOURCE --target {ROOT}/overlay").strip()
    assert layers == LV


def test_podman_second_apply_changes_nothing(host, cfg):
    assert host.run(f"direct-lvm plan --exit-code {cfg('podman')}").rc == 0
    r = apply(host, cfg("podman"))
    assert r.rc == 0, r.stderr
    assert "nothing changed" in r.stderr and ran(r.stderr) == [], r.stderr


def test_podman_second_disk_grows_lv_and_xfs_online(host, cfg):
    r = apply(host, cfg("podman-grown"))
    assert r.rc == 0, r.stderr
    steps = ran(r.stderr)
    assert [s.split()[0] for s in steps[:3]] == ["vgextend", "lvextend", "xfs_growfs"], steps
    assert "mkfs.xfs" not in r.stderr
    _, _, size2 = mount_of(host, ROOT)
    assert size2 > int(STATE["size1"]) + 0.9 * GIB, (STATE["size1"], size2)
    out = host.check_output("podman run --rm --network none dl/busybox sh -c 'echo grown'")
    assert out.strip() == "grown"
    assert podman_info(host)["store"]["graphRoot"] == ROOT
    assert host.run(f"direct-lvm plan --exit-code {cfg('podman-grown')}").rc == 0
