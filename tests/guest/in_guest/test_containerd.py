"""containerd-devmapper through the CLI on a blank disk (serial dl-data2): the pool, the
snapshotter's config imported by the distribution's config.toml (kept otherwise), a
container run on devmapper snapshots that live in our pool, and a no-op second apply."""

import json
import re
import shutil
from pathlib import Path

import tomllib
from oci_helpers import REF, build_oci_archive, our_thin_devices, running_container

CONFIG = Path("/etc/containerd/config.toml")
ORIG = Path("/var/tmp/dl-containerd-config.orig")
FRAGMENT = "/etc/containerd/conf.d/direct-lvm.toml"
POOL_DM = "containerd-thin--pool"  # vg containerd, pool thin-pool: LVM doubles the dash


def test_apply_creates_pool_and_configures_containerd(host, cfg):
    if CONFIG.exists():
        shutil.copy(CONFIG, ORIG)
    r = host.run(f"direct-lvm apply {cfg('containerd')}")
    assert r.rc == 0, r.stderr
    assert "applied and verified" in r.stderr
    assert "+ systemctl restart containerd.service" in r.stderr
    lv = json.loads(host.check_output(
        "lvs --reportformat json -o lv_attr,lv_tags containerd/thin-pool"
    ))["report"][0]["lv"][0]  # fmt: skip
    assert lv["lv_attr"].startswith("t") and "direct_lvm" in lv["lv_tags"]


def test_devmapper_plugin_ok(host):
    out = host.check_output("ctr plugins ls")
    assert re.search(r"^io\.containerd\.snapshotter\.v1\s+devmapper\s+\S+\s+ok\s*$", out, re.M), out


def test_config_imports_fragment_and_keeps_the_rest(host):
    data = tomllib.loads(CONFIG.read_text())
    assert FRAGMENT in data["imports"]
    if ORIG.exists():  # the distribution's config: everything else unchanged
        orig = tomllib.loads(ORIG.read_text())
        assert {k: v for k, v in data.items() if k != "imports"} == {
            k: v for k, v in orig.items() if k != "imports"}  # fmt: skip
    frag = tomllib.loads(Path(FRAGMENT).read_text())
    dm = frag["plugins"]["io.containerd.snapshotter.v1.devmapper"]
    assert dm["pool_name"] == POOL_DM
    assert dm["base_image_size"] == str(1 << 30)
    # what containerd itself made of it
    dump = host.check_output("containerd config dump")
    assert f'pool_name = "{POOL_DM}"' in dump


def test_containerd_waits_for_the_pool_device(host):
    pre = host.check_output("systemctl show -p ExecStartPre --value containerd.service")
    assert f"udevadm wait --timeout=60 /dev/mapper/{POOL_DM}" in pre, pre
    # one {...} entry per command (the vendor's modprobe first): ours exited 0
    assert re.search(r"\{[^}]*udevadm wait[^}]*status=0[ /]", pre), pre
    assert host.run("systemd-analyze verify containerd.service").rc == 0


def test_ctr_run_on_devmapper(host):
    archive = build_oci_archive(Path("/var/tmp/busybox-oci.tar"))
    host.check_output(f"ctr images import --snapshotter devmapper {archive}")
    assert REF in host.check_output("ctr images ls -q")
    out = host.check_output(
        f"ctr run --rm --snapshotter devmapper {REF} dl-devmapper sh -c 'echo hello-devmapper'"
    )
    assert out.strip() == "hello-devmapper"
    snaps = host.check_output("ctr snapshots --snapshotter devmapper ls")
    assert len(snaps.strip().splitlines()) >= 2  # header + the image's layer


def test_snapshot_devices_live_in_our_pool(host):
    with running_container(host, "dl-live"):
        ours, major_minor = our_thin_devices(host, POOL_DM)
    # the running container's snapshot: a thin device <pool_name>-snap-N in our pool
    assert ours, host.check_output("dmsetup table")
    for t in ours:
        assert t.split()[4] == major_minor, (t, major_minor)


def test_second_apply_changes_nothing(host, cfg):
    r = host.run(f"direct-lvm apply {cfg('containerd')}")
    assert r.rc == 0, r.stderr
    assert "nothing changed" in r.stderr
    assert not re.search(r"\+ (vgcreate|lvcreate|lvchange|wipefs|systemctl|write)", r.stderr)
