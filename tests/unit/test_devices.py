"""Device selection rules (devices.select) on lsblk trees: a captured bookworm guest and an
AWS Nitro-style NVMe layout (lsblk --json --bytes --paths; root on nvme0n1p1, EBS volumes
with vol... serials, an instance-store disk, /dev/xvdf alias links)."""

import json
from pathlib import Path

import pytest
from obs import make_observed

from direct_lvm import OWNER_TAG, core, spec
from direct_lvm.devices import Choice, Selector, natural_key, select
from direct_lvm.errors import ConfigError
from direct_lvm.plan import DEVICE_RECORD, Action, plan
from direct_lvm.probe import LV, PV, VG, LvmState, parse_lsblk

DATA = Path(__file__).parent / "data"
G = 1 << 30
BY_ID = "/dev/disk/by-id/"

# What udev (and the ebsnvme-id rules for the xvd/sd aliases) makes on such an instance.
NVME_LINKS = {
    "/dev/nvme0n1": (BY_ID + "nvme-Amazon_Elastic_Block_Store_vol0a1b2c3d4e5f60001",),
    "/dev/nvme1n1": (BY_ID + "nvme-Amazon_Elastic_Block_Store_vol0a1b2c3d4e5f60002",
                     BY_ID + "nvme-nvme.1d0f-766f6c30613162326333643465356636303030"),
    "/dev/nvme2n1": (BY_ID + "nvme-Amazon_Elastic_Block_Store_vol0a1b2c3d4e5f60003",),
    "/dev/nvme3n1": (BY_ID + "nvme-Amazon_Elastic_Block_Store_vol0a1b2c3d4e5f60004",),
    "/dev/nvme10n1": (BY_ID + "nvme-Amazon_EC2_NVMe_Instance_Storage_AWS2F1A2B3C4D5E6F7A8",),
}  # fmt: skip


@pytest.fixture
def nvme():
    return parse_lsblk((DATA / "lsblk-aws-nvme.json").read_text())


def entries(*devices):
    s = spec.from_mapping({"devices": list(devices)})
    return s.entries


def pick(tree, *devices, links=NVME_LINKS, resolved=None, pv_vgs=None, vg="docker"):
    return select(entries(*devices), tree, links, resolved or {}, pv_vgs or {}, vg)


def test_natural_kernel_name_order():
    vd = ["/dev/vdaa", "/dev/vdc", "/dev/vdb", "/dev/vdz"]
    assert sorted(vd, key=natural_key) == ["/dev/vdb", "/dev/vdc", "/dev/vdz", "/dev/vdaa"]
    nvme = ["/dev/nvme10n1", "/dev/nvme2n1", "/dev/nvme1n1", "/dev/nvme1n2"]
    assert sorted(nvme, key=natural_key) == [
        "/dev/nvme1n1",
        "/dev/nvme1n2",
        "/dev/nvme2n1",
        "/dev/nvme10n1",
    ]


def test_nvme_partitions_are_named_with_p(nvme):
    assert nvme["/dev/nvme0n1"].holders == ("/dev/nvme0n1p1", "/dev/nvme0n1p14",
                                            "/dev/nvme0n1p15")  # fmt: skip
    assert nvme["/dev/nvme0n1"].is_root_disk and nvme["/dev/nvme0n1p15"].type == "part"


def test_aws_volume_id_with_or_without_dash_selects_by_serial(nvme):
    for serial in ("vol-0a1b2c3d4e5f60002", "vol0a1b2c3d4e5f60002"):
        (c,) = pick(nvme, {"serial": serial}).chosen
        assert c.real == "/dev/nvme1n1" and c.serial == "vol0a1b2c3d4e5f60002"
        assert "the only disk with serial=" in c.reason


def test_by_id_name_or_path(nvme):
    name = "nvme-Amazon_EC2_NVMe_Instance_Storage_AWS2F1A2B3C4D5E6F7A8"
    for value in (name, BY_ID + name):
        (c,) = pick(nvme, {"id": value}).chosen
        assert c.real == "/dev/nvme10n1"


def test_xvd_alias_path_resolves_to_the_nvme_node(nvme):
    (c,) = pick(nvme, "/dev/xvdf", resolved={"/dev/xvdf": "/dev/nvme1n1"}).chosen
    assert (c.label, c.real) == ("/dev/xvdf", "/dev/nvme1n1")
    assert "a link to /dev/nvme1n1" in c.reason


def test_two_paths_to_the_same_disk_are_refused(nvme):
    with pytest.raises(ConfigError, match="/dev/xvdf and /dev/nvme1n1 are the same disk"):
        pick(nvme, "/dev/xvdf", "/dev/nvme1n1", resolved={"/dev/xvdf": "/dev/nvme1n1"})


def test_wwn_ignores_case(nvme):
    wwn = nvme["/dev/nvme3n1"].wwn.upper()
    (c,) = pick(nvme, {"wwn": wwn}).chosen
    assert c.real == "/dev/nvme3n1"


def test_exact_size_and_range(nvme):
    (c,) = pick(nvme, {"size": "200G"}).chosen
    assert c.real == "/dev/nvme10n1"
    (c,) = pick(nvme, {"min_size": "40G", "max_size": "60G"}).chosen
    assert c.real == "/dev/nvme2n1"  # matched; check_device refuses it later (partitions)


def test_first_empty_skips_root_partitioned_and_formatted_disks(nvme):
    (c,) = pick(nvme, {"first_empty": True}).chosen
    assert c.real == "/dev/nvme1n1"
    assert "/dev/nvme0n1 holds the root filesystem" in c.reason
    (c,) = pick(nvme, {"first_empty": True, "min_size": "150G"}).chosen
    assert c.real == "/dev/nvme10n1"
    assert "/dev/nvme2n1" not in c.reason  # filtered out by size, not skipped as not empty


def test_first_empty_reasons_name_partitions_and_signatures(nvme):
    s = pick(nvme, {"serial": "vol0a1b2c3d4e5f60002"}, {"first_empty": True})
    first = s.chosen[1]
    assert first.real == "/dev/nvme10n1"
    assert "/dev/nvme2n1 has a gpt partition table (/dev/nvme2n1p1)" in first.reason
    assert "/dev/nvme3n1 has a ext4 signature" in first.reason


def test_specific_selectors_are_matched_before_first_empty(nvme):
    s = pick(nvme, {"first_empty": True}, {"serial": "vol0a1b2c3d4e5f60002"})
    assert [(c.label, c.real) for c in s.chosen] == [
        ("first_empty", "/dev/nvme10n1"),
        ("serial=vol0a1b2c3d4e5f60002", "/dev/nvme1n1"),
    ]


def test_our_pvs_come_first_so_a_later_boot_keeps_its_disk():
    tree = parse_lsblk((DATA / "lsblk-bookworm.json").read_text())
    # /dev/vdb is our PV (it holds the pool); a new empty disk /dev/vdc appears
    tree["/dev/vdc"] = tree["/dev/sda"].__class__(**{
        **tree["/dev/vdb"].__dict__, "path": "/dev/vdc", "real": "/dev/vdc", "fstype": "",
        "holders": (), "serial": "new"})  # fmt: skip
    s = pick(tree, {"first_empty": True}, links={}, pv_vgs={"/dev/vdb": "docker"})
    (c,) = s.chosen
    assert (c.real, c.ours) == ("/dev/vdb", True) and "already a PV of VG docker" in c.reason
    # another VG's PV is never "ours"
    s = pick(tree, {"first_empty": True}, links={}, pv_vgs={"/dev/vdb": "docker"}, vg="other")
    assert s.chosen[0].real == "/dev/vdc" and "/dev/vdb a PV of VG docker" in s.chosen[0].reason


def test_several_candidates_is_an_error_listing_them(nvme):
    with pytest.raises(ConfigError) as exc:
        pick(nvme, {"size": "100G"})
    msg = str(exc.value)
    assert "devices entry size=100G matches 2 disks" in msg
    assert "/dev/nvme1n1 (100.00 GiB, serial vol0a1b2c3d4e5f60002)" in msg
    assert "/dev/nvme3n1 (100.00 GiB, serial vol0a1b2c3d4e5f60004)" in msg
    assert "fix: make the entry match one disk" in msg and exc.value.exit_code == 2


def test_nothing_matches_is_missing(nvme):
    s = pick(nvme, {"serial": "vol-0nope"}, "/dev/nvme9n1", {"first_empty": True, "size": "1T"})
    assert s.chosen == ()
    assert s.missing == ("/dev/nvme9n1", "serial=vol-0nope", "size=1T,first_empty")


def test_only_whole_disks_are_selected(nvme):
    # a partition is never a selector's candidate, even when its size matches
    size = nvme["/dev/nvme0n1p15"].size
    s = select((Selector(size=size),), nvme, NVME_LINKS, {}, {}, "docker")
    assert s.missing == (f"size={size // (1 << 20)}M",)


def test_selector_round_trips_through_the_spec():
    s = spec.from_mapping({"devices": ["/dev/vdb", {"serial": "abc", "min_size": "1G"}]})
    assert s.devices == ("/dev/vdb", "serial=abc,min_size=1G")
    assert spec.from_mapping(spec.to_mapping(s)) == s
    assert json.dumps(spec.to_mapping(s)["devices"]) == (
        '["/dev/vdb", {"serial": "abc", "min_size": "1G"}]'
    )


# ------------------------------------------------------------------ plan and record


EXT = 4 << 20


def _converged(s):
    return LvmState(
        pvs=(PV("/dev/vdb", "pv-uuid", s.vg, 4 * G, 4 * G - (4 << 20)),),
        vgs=(VG(s.vg, "vg-uuid", 4 * G - (4 << 20), 201 * EXT, EXT, 1023, 201,
                frozenset({OWNER_TAG})),),
        lvs=(LV(s.vg, s.pool, "lv-uuid", "twi-a-tz--", 818 * EXT, 8 << 20, 0.0, 10.0,
                s.profile_name, frozenset({OWNER_TAG}), "queue", "thin-pool", s.chunk_size,
                False, "monitored"),),
    )  # fmt: skip


def test_plan_says_which_device_a_selector_chose_and_records_it(blank_disk):
    s = spec.from_mapping({"devices": [{"first_empty": True}]})
    why = "the first empty whole disk in name order; skipped /dev/vdb has a ext4 signature"
    choice = Choice("first_empty", "/dev/vdc", why, False, "dl-blank", "", 4 * G)
    obs = make_observed(LvmState(), {"first_empty": blank_disk(path="first_empty", real="/dev/vdc",
                                                          serial="dl-blank")},
                   resolved={"first_empty": "/dev/vdc"}, choices=(choice,))  # fmt: skip
    p = plan(s, obs, core.desired_files(s, None))
    assert p.facts[0] == (
        "device first_empty -> /dev/vdc: 4.00 GiB disk, serial dl-blank, blank; chosen as " + why
    )
    vgcreate = next(st for st in p.steps if st.argv[:1] == ("vgcreate",))
    assert vgcreate.argv[-1] == "/dev/vdc"
    last = p.steps[-1]
    assert (last.action, last.path) == (Action.WRITE, DEVICE_RECORD)
    rec = json.loads(last.content)
    assert rec == {"/dev/vdc": {"vg": "docker", "entry": "first_empty", "reason": why,
                                "serial": "dl-blank", "wwn": "", "size": 4 * G}}  # fmt: skip
    # once recorded (and the pool made), the same choice plans nothing
    ours = Choice("first_empty", "/dev/vdb", "already a PV of VG docker", True, "x", "", 4 * G)
    obs2 = make_observed(_converged(s), {}, {p: c for p, c in core.desired_files(s, None).items()},
                    resolved={"first_empty": "/dev/vdb"}, choices=(ours,),
                    device_record=json.dumps({"/dev/vdb": {"vg": "docker",
                                                           "entry": "first_empty"}}))  # fmt: skip
    p2 = plan(s, obs2, core.desired_files(s, None))
    assert p2.empty and p2.facts == ("device first_empty -> /dev/vdb: already a PV of VG docker",)


def test_status_shows_each_pv_identity_and_why(monkeypatch):
    s = spec.from_mapping({"devices": [{"serial": "dl-data1"}]})
    rec = {"/dev/vdb": {"vg": "docker", "entry": "serial=dl-data1", "reason": "the only disk"}}
    monkeypatch.setattr(
        core, "read_file", lambda p: json.dumps(rec) if p == DEVICE_RECORD else None
    )
    monkeypatch.setattr(core, "backups", lambda: [])
    monkeypatch.setattr(core, "profile_policy", lambda name: None)  # lvmconfig's answer
    tree = parse_lsblk((DATA / "lsblk-bookworm.json").read_text())
    links = {"/dev/vdb": ("/dev/disk/by-id/virtio-dl-data1",)}
    (entry,) = core.status(_converged(s), (tree, links))
    assert entry.to_json()["pvs"] == [{
        "device": "/dev/vdb", "size": 4 * G, "serial": "dl-data1", "wwn": "",
        "by_id": ["/dev/disk/by-id/virtio-dl-data1"], "entry": "serial=dl-data1",
        "reason": "the only disk",
    }]  # fmt: skip


def test_render_round_trips_selectors(tmp_path):
    import yaml

    from direct_lvm import envs

    cfg = tmp_path / "sel.yaml"
    cfg.write_text("direct_lvm:\n  devices: [{serial: vol-0abc}, {first_empty: true}, /dev/vdb]\n")
    for carrier in envs.Carrier:
        files = envs.artifacts(envs.env_from_config(cfg), carrier)
        doc = yaml.safe_load(files["user-data.yaml"])
        if carrier is envs.Carrier.FILE:
            doc = yaml.safe_load(doc["write_files"][0]["content"])
        s = spec.from_mapping(doc["direct_lvm"])
        assert s.devices == ("serial=vol-0abc", "first_empty", "/dev/vdb")


def test_captured_guest_with_nvme_and_every_refused_kind():
    """lsblk captured at the end of the devices guest test (tests/guest/test_guest_devices.py)."""
    tree = parse_lsblk((DATA / "lsblk-bookworm-devices.json").read_text())
    nvme = tree["/dev/nvme0n1"]
    assert nvme.serial == "dl-nvme" and nvme.wwn.startswith("nvme.1b36-")
    assert tree["/dev/vdk"].read_only and tree["/dev/vdc"].holders == ("/dev/vdc1",)
    pv_vgs = {"/dev/vdd": "foreign", "/dev/vdg": "fe", "/dev/vdl": "late", "/dev/nvme0n1": "nv"}
    (c,) = select(entries({"wwn": nvme.wwn.upper()}), tree, {}, {}, pv_vgs, "nv").chosen
    assert (c.real, c.ours) == ("/dev/nvme0n1", True)
    (c,) = select(entries({"first_empty": True}), tree, {}, {}, pv_vgs, "new").chosen
    assert c.real == "/dev/vdh"  # the 32M disk: the only blank one before vdi, vdj, vdk
    skipped = [
        "/dev/vdd a PV of VG foreign",
        "/dev/vdf has a swap signature",
        "/dev/vdc has a gpt partition table (/dev/vdc1)",
        "/dev/vdg a PV of VG fe",
    ]
    for why in skipped:
        assert why in c.reason
