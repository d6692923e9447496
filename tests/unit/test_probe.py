"""Parsers on real output captured in a guest (tests/unit/data/, refreshed by the guest
job's out/ directory: fullreport.json and lsblk.json)."""

import json
from pathlib import Path

from direct_lvm import core, pool
from direct_lvm.probe import (
    devno,
    mount_at,
    parse_findmnt,
    parse_fullreport,
    parse_lsblk,
    parse_wipefs,
)

DATA = Path(__file__).parent / "data"


def test_fullreport_after_apply():
    lvm = parse_fullreport((DATA / "fullreport-bookworm.json").read_text())
    vg = lvm.vg("docker")
    assert vg is not None and vg.owned and vg.extent_size == 4 << 20
    pool = lvm.lv("docker", "thinpool")
    assert pool is not None
    assert pool.is_thin_pool and pool.active and pool.owned
    assert pool.segtype == "thin-pool" and pool.chunk_size == 512 * 1024
    assert pool.zero is False and pool.monitor == "monitored"
    assert pool.profile == "docker-thinpool"
    assert pool.metadata_size == 8 << 20 and pool.data_percent is not None
    assert [p.name for p in lvm.pvs_of("docker")] == ["/dev/vdb"]
    # hidden LVs (pmspare, tdata, tmeta) are reported but never mistaken for the pool
    assert sum(lv.is_thin_pool for lv in lvm.lvs) == 1


def test_status_from_real_report(monkeypatch):
    lvm = parse_fullreport((DATA / "fullreport-bookworm.json").read_text())
    monkeypatch.setattr(core, "profile_policy", lambda name: (80, 20))
    (entry,) = core.status(lvm)
    assert entry.dm_path == "/dev/mapper/docker-thinpool"
    # 804 MiB free, pool 3272 MiB: one 20% step (656 MiB) fits, a second (788 MiB) does not
    assert entry.extensions_left == 1


def test_empty_fullreport():
    assert parse_fullreport('{"report": []}').vgs == ()
    assert parse_fullreport("").lvs == ()


def test_lsblk_root_disk_mounts_and_holders():
    devs = parse_lsblk((DATA / "lsblk-bookworm.json").read_text())
    assert devs["/dev/vda"].is_root_disk and devs["/dev/vda"].mountpoints == ("/",)
    vdb = devs["/dev/vdb"]
    assert not vdb.is_root_disk and vdb.mountpoints == ()
    assert vdb.holders  # the pool's LVs sit on it
    assert vdb.serial == "dl-data1" and vdb.size == 4 << 30
    assert devs["/dev/sda"].mountpoints == ("/job",)


def test_lsblk_root_on_lvm_marks_the_whole_disk():
    tree = {"blockdevices": [{
        "name": "/dev/sda", "path": "/dev/sda", "type": "disk", "size": 10, "mountpoints": [None],
        "children": [{"name": "/dev/sda3", "path": "/dev/sda3", "type": "part", "size": 9,
                      "mountpoints": [None],
                      "children": [{"name": "/dev/mapper/centos-root", "type": "lvm",
                                    "path": "/dev/mapper/centos-root", "size": 8,
                                    "mountpoints": ["/"]}]}],
    }, {"name": "/dev/sdb", "path": "/dev/sdb", "type": "disk", "size": 10,
        "mountpoints": [None]}]}  # fmt: skip
    devs = parse_lsblk(json.dumps(tree))
    assert devs["/dev/sda"].is_root_disk and devs["/dev/sda3"].is_root_disk
    assert devs["/dev/sda"].mountpoints == ("/",)
    assert not devs["/dev/sdb"].is_root_disk


def test_wipefs():
    assert parse_wipefs("") == ()
    out = json.dumps(
        {
            "signatures": [
                {
                    "device": "vdc",
                    "offset": "0x438",
                    "type": "ext4",
                    "uuid": "x",
                    "label": "precious",
                }
            ]
        }
    )
    assert parse_wipefs(out) == ("ext4",)


# util-linux 2.36 (bullseye): no MOUNTPOINTS column, lsblk -o ...,MOUNTPOINT,... instead
LSBLK_2_36 = """{
   "blockdevices": [
      {"name": "/dev/vda", "path": "/dev/vda", "type": "disk", "size": 4294967296,
       "fstype": "ext4", "pttype": null, "mountpoint": "/", "serial": "root", "wwn": null,
       "ro": false},
      {"name": "/dev/vdb", "path": "/dev/vdb", "type": "disk", "size": 4294967296,
       "fstype": null, "pttype": null, "mountpoint": null, "serial": "dl-data1",
       "wwn": null, "ro": false},
      {"name": "/dev/vdc", "path": "/dev/vdc", "type": "disk", "size": 8388608,
       "fstype": "vfat", "pttype": null, "mountpoint": "/mnt", "serial": "cidata",
       "wwn": null, "ro": true}
   ]
}"""


def test_lsblk_before_util_linux_2_37_mountpoint_column():
    tree = parse_lsblk(LSBLK_2_36)
    assert tree["/dev/vda"].is_root_disk and tree["/dev/vda"].mountpoints == ("/",)
    assert tree["/dev/vdb"].mountpoints == () and not tree["/dev/vdb"].is_root_disk
    assert tree["/dev/vdb"].serial == "dl-data1"
    assert tree["/dev/vdc"].mountpoints == ("/mnt",) and tree["/dev/vdc"].read_only


def test_probe_block_asks_again_without_mountpoints_on_old_lsblk(monkeypatch):
    from direct_lvm import probe
    from direct_lvm.run import Result

    calls = []

    def fake_run(argv, check=True, **_kw):
        calls.append(argv[-1])
        if "MOUNTPOINTS" in argv[-1]:
            return Result(tuple(argv), 1, "", "lsblk: unknown column: MOUNTPOINTS,SERIAL\n")
        return Result(tuple(argv), 0, LSBLK_2_36, "")

    monkeypatch.setattr(probe, "run", fake_run)
    monkeypatch.setattr(probe, "by_id_links", lambda: {})
    tree, _links = probe.probe_block()
    assert calls == [probe.LSBLK_COLUMNS, probe.LSBLK_COLUMNS_BEFORE_2_37]
    assert "MOUNTPOINT," in calls[1] and "MOUNTPOINTS" not in calls[1]
    assert tree["/dev/vda"].is_root_disk


def test_profile_policy_from_lvmconfig():
    argv = pool.profile_policy_argv("docker-thinpool")
    assert argv[:2] == ["lvmconfig", "--typeconfig"] and "--mergedconfig" in argv
    assert argv[argv.index("--metadataprofile") + 1] == "docker-thinpool"
    assert argv[-2:] == ["activation/thin_pool_autoextend_threshold",
                         "activation/thin_pool_autoextend_percent"]  # fmt: skip
    out = "thin_pool_autoextend_threshold=80\nthin_pool_autoextend_percent=20\n"
    assert pool.parse_profile_policy(out) == (80, 20)
    nested = (
        "activation {\n\tthin_pool_autoextend_percent = 25\n"
        "\tthin_pool_autoextend_threshold = 70\n}\n"
    )
    assert pool.parse_profile_policy(nested) == (70, 25)
    off = "thin_pool_autoextend_threshold=100\nthin_pool_autoextend_percent=20\n"
    assert pool.parse_profile_policy(off) is None  # 100: autoextend off
    assert pool.parse_profile_policy("thin_pool_autoextend_threshold=80\n") is None
    assert pool.parse_profile_policy("") is None
    assert pool.profile_policy("") is None  # no profile: no command


def test_findmnt_json_of_util_linux_2_36_and_2_38_reads_the_same():
    """Real `findmnt --json --list` output (bullseye's 2.36 and bookworm's 2.38), with a
    mount point holding a space (mountinfo's \\040, undone by findmnt) and two mounts
    stacked on one path."""
    old, new = (parse_findmnt((DATA / f"findmnt-util-linux-{v}.json").read_text())
                for v in ("2.36", "2.38"))  # fmt: skip
    assert old == new and len(old) == 7
    root = mount_at(new, "/")
    assert root is not None and root.devno == "254:0" and root.fstype == "ext4"
    assert root.source == "/dev/vda" and {"rw", "discard"} <= root.options
    assert mount_at(new, "/tmp/dl/mnt with space") is not None
    top = mount_at(new, "/tmp/dl/var/lib/docker")
    assert top is not None and top.devno == "0:42"  # the topmost of the two
    assert "size=3072k" in top.options
    assert mount_at(new, "/tmp/dl/var/lib") is None
    assert parse_findmnt("") == ()  # findmnt prints nothing when there is nothing to list


def test_devno_of_a_missing_node_is_none():
    assert devno("/dev/does-not-exist-direct-lvm") is None
