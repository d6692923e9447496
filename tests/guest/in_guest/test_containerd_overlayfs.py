"""containerd-overlayfs on bookworm (containerd 1.6) through the CLI: refusals first (a
conflicting `root` in config.toml, another filesystem mounted at /var/lib/containerd),
each leaving the blank disk dl-data1 untouched; then a takeover of a populated
/var/lib/containerd (moved aside, content kept), containerd on our XFS LV with its
overlayfs snapshotter, a container run, a no-op second apply, and online growth when a
second disk (dl-data3) joins the VG under a running containerd."""

import json
import os
import re
import shutil
import tarfile
from pathlib import Path

from lvroot_helpers import GIB, apply, first_mib_sha, mount_of, ran, refused
from oci_helpers import REF, build_oci_archive

ROOT = "/var/lib/containerd"
LV = "/dev/mapper/ctd-containerd"
DISK = "/dev/disk/by-id/virtio-dl-data1"
CONFIG = Path("/etc/containerd/config.toml")
ORIG = Path("/var/tmp/dl-ctd-config.orig")
BACKUP_PREFIX = "/var/lib/containerd.direct-lvm-backup-"
CONTENT = "io.containerd.content.v1.content/blobs/sha256"
STATE: dict[str, str] = {}


def image_blobs(archive):
    """The sha256 digests of the manifest, config and layers of the OCI archive's image."""
    with tarfile.open(archive) as tar:

        def blob(digest):
            return json.load(tar.extractfile(f"blobs/sha256/{digest.split(':')[1]}"))

        (desc,) = json.load(tar.extractfile("index.json"))["manifests"]
        manifest = blob(desc["digest"])
        digests = [desc["digest"], manifest["config"]["digest"]]
        digests += [layer["digest"] for layer in manifest["layers"]]
    return {d.split(":")[1] for d in digests}


def untouched(host):
    assert first_mib_sha(DISK) == STATE["sha"]
    assert host.run("vgs ctd").rc != 0


def test_ctd_refuses_a_conflicting_root_in_config_toml(host, cfg):
    STATE["sha"] = first_mib_sha(DISK)
    shutil.copy(CONFIG, ORIG)
    CONFIG.write_text('root = "/srv/containerd"\n' + ORIG.read_text())
    try:
        r = apply(host, cfg("ctd-overlayfs"))
        refused(r, "/srv/containerd", str(CONFIG))
        untouched(host)
        # the same in a file config.toml imports
        Path("/etc/containerd/elsewhere.toml").write_text('version = 2\nroot = "/srv/ctd2"\n')
        CONFIG.write_text('imports = ["/etc/containerd/elsewhere.toml"]\n' + ORIG.read_text())
        refused(apply(host, cfg("ctd-overlayfs")), "/srv/ctd2", "elsewhere.toml")
        untouched(host)
    finally:
        shutil.copy(ORIG, CONFIG)
        Path("/etc/containerd/elsewhere.toml").unlink(missing_ok=True)


def test_ctd_refuses_another_mount_at_the_root(host, cfg):
    host.check_output(f"mkdir -p {ROOT} && mount -t tmpfs dl-other {ROOT}")
    try:
        refused(apply(host, cfg("ctd-overlayfs")), ROOT, "dl-other")
        untouched(host)
    finally:
        host.check_output(f"umount {ROOT}")


def test_ctd_takeover_moves_a_populated_root_aside(host, cfg):
    # containerd ran on the root filesystem and holds an image
    host.check_output("systemctl start containerd.service")
    archive = build_oci_archive(Path("/var/tmp/busybox-oci.tar"))
    host.check_output(f"ctr images import {archive}")
    Path(f"{ROOT}/dl-marker").write_text("kept\n")
    # the image's manifest, config and layer (containerd's GC may drop the index blob
    # of the import at any time, so not the directory listing)
    blobs = image_blobs(archive)
    assert blobs <= set(os.listdir(f"{ROOT}/{CONTENT}"))
    r = apply(host, cfg("ctd-overlayfs"))
    assert r.rc == 0, r.stderr
    steps = ran(r.stderr)
    assert "systemctl stop" in steps and "mv --no-target-directory" in steps, steps
    assert "+ mkfs.xfs -q -n ftype=1 " + LV in r.stderr
    (backup,) = [str(p) for p in Path("/var/lib").iterdir() if str(p).startswith(BACKUP_PREFIX)]
    assert Path(f"{backup}/dl-marker").read_text() == "kept\n"
    assert blobs <= set(os.listdir(f"{backup}/{CONTENT}"))
    assert not Path(f"{ROOT}/dl-marker").exists()


def test_ctd_root_is_our_xfs_lv_and_containerd_uses_it(host):
    source, fstype, size = mount_of(host, ROOT)
    assert (source, fstype) == (LV, "xfs"), (source, fstype)
    STATE["size1"] = str(size)
    assert "ftype=1" in host.check_output(f"xfs_info {ROOT}")
    assert host.check_output("systemctl is-enabled var-lib-containerd.mount").strip() == "enabled"
    assert host.check_output("systemctl is-active containerd.service").strip() == "active"
    dump = host.check_output("containerd config dump")
    assert re.search(rf'^root = "{ROOT}"$', dump, re.M), dump
    plugins = host.check_output("ctr plugins ls")
    assert re.search(r"^io\.containerd\.snapshotter\.v1\s+overlayfs\s+\S+\s+ok\s*$", plugins, re.M)
    # containerd requires the mount (our drop-in): it never starts on the root filesystem
    req = host.check_output("systemctl show -p RequiresMountsFor --value containerd.service")
    assert ROOT in req.split(), req
    assert host.run("systemd-analyze verify var-lib-containerd.mount containerd.service").rc == 0


def test_ctd_a_container_runs_on_overlayfs_in_our_lv(host):
    archive = build_oci_archive(Path("/var/tmp/busybox-oci.tar"))
    host.check_output(f"ctr images import {archive}")
    out = host.check_output(f"ctr run --rm {REF} dl-ovfs sh -c 'echo hello-overlayfs'")
    assert out.strip() == "hello-overlayfs"
    snaps = host.check_output("ctr snapshots --snapshotter overlayfs ls")
    assert len(snaps.strip().splitlines()) >= 2, snaps  # header + the image's layer
    snapdir = f"{ROOT}/io.containerd.snapshotter.v1.overlayfs/snapshots"
    src = host.check_output(f"findmnt --noheadings -o SOURCE --target {snapdir}").strip()
    assert src == LV, src


def test_ctd_second_apply_changes_nothing(host, cfg):
    assert host.run(f"direct-lvm plan --exit-code {cfg('ctd-overlayfs')}").rc == 0
    r = apply(host, cfg("ctd-overlayfs"))
    assert r.rc == 0, r.stderr
    assert "nothing changed" in r.stderr and ran(r.stderr) == [], r.stderr


def test_ctd_second_disk_grows_lv_and_xfs_online(host, cfg):
    pid = host.check_output("systemctl show -p MainPID --value containerd.service").strip()
    r = apply(host, cfg("ctd-overlayfs-grown"))
    assert r.rc == 0, r.stderr
    steps = ran(r.stderr)
    assert [s.split()[0] for s in steps[:3]] == ["vgextend", "lvextend", "xfs_growfs"], steps
    assert "mkfs.xfs" not in r.stderr and "systemctl restart" not in r.stderr
    _, _, size2 = mount_of(host, ROOT)
    assert size2 > int(STATE["size1"]) + 0.9 * GIB, (STATE["size1"], size2)
    pid2 = host.check_output("systemctl show -p MainPID --value containerd.service").strip()
    assert pid2 == pid  # containerd ran on through it
    out = host.check_output(f"ctr run --rm {REF} dl-ovfs2 sh -c 'echo grown'")
    assert out.strip() == "grown"
    assert host.run(f"direct-lvm plan --exit-code {cfg('ctd-overlayfs-grown')}").rc == 0
