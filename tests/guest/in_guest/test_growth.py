"""Growth across boots (issue 6, item 3): the first boot (test_crash.py) left crash.yaml's
pool on dl-a (3 GiB) with an image in docker; the host then grew dl-a's disk file to
5 GiB and attached a new disk dl-c (1 GiB), which growboot.yaml lists. One apply grows
the VG (pvresize, vgextend) and the pool (lvextend to data_percent of the bigger VG); the
image is still there; the next apply changes nothing."""

import json
import os

from crashkit import apply, plan_steps, sh

EXTENT = 4 << 20
STATE = {}


def report():
    doc = json.loads(sh("lvm fullreport --reportformat json --units b --nosuffix -a").stdout)
    (rep,) = [r for r in doc["report"] if r["vg"] and r["vg"][0]["vg_name"] == "docker"]
    pool = next(lv for lv in rep["lv"] if lv["lv_name"] == "thinpool")
    return rep["vg"][0], pool, {p["pv_name"]: p for p in rep["pv"]}


def test_first_boot_pool_is_there_and_the_disk_grew():
    vg, pool, pvs = report()
    a = os.path.realpath("/dev/disk/by-id/virtio-dl-a")
    assert int(pvs[a]["dev_size"]) == 5 << 30  # the host's resize
    assert int(pvs[a]["pv_size"]) < 3 << 30  # the PV still has the first boot's size
    STATE.update(vg_size=int(vg["vg_size"]), pool_size=int(pool["lv_size"]),
                 meta=int(pool["lv_metadata_size"]), uuid=pool["lv_uuid"])  # fmt: skip


def test_plan_grows_the_vg_then_the_pool():
    a = os.path.realpath("/dev/disk/by-id/virtio-dl-a")
    c = os.path.realpath("/dev/disk/by-id/virtio-dl-c")
    steps = [s["argv"] for s in plan_steps("growboot") if "argv" in s]
    assert ["pvresize", a] in steps, steps
    assert ["vgextend", "docker", c] in steps, steps
    assert ["lvchange", "--errorwhenfull", "n", "docker/thinpool"] in steps, steps
    assert any(s[:2] == ["lvextend", "--extents"] for s in steps), steps
    order = [s[0] for s in steps if s[0] in ("pvresize", "vgextend", "lvextend")]
    assert order[:2] == ["pvresize", "vgextend"] and order[-1] == "lvextend"


def test_apply_grows_the_pool_to_data_percent_of_the_new_vg():
    r = apply("growboot")
    assert r.returncode == 0, r.stderr
    assert "+ pvresize" in r.stderr and "+ vgextend" in r.stderr and "+ lvextend" in r.stderr
    vg, pool, pvs = report()
    size = int(vg["vg_size"])
    assert size > STATE["vg_size"] + (2 << 30)  # +2 GiB on dl-a and +1 GiB from dl-c
    assert len(pvs) == 2
    extents = int(vg["vg_extent_count"])
    assert int(pool["lv_size"]) == extents * 80 // 100 * EXTENT  # data_percent 80
    assert int(pool["lv_size"]) > STATE["pool_size"]
    assert int(pool["lv_metadata_size"]) >= STATE["meta"]
    assert pool["lv_uuid"] == STATE["uuid"] and pool["lv_when_full"] == "queue"


def test_docker_and_its_image_survived():
    out = sh("docker run --rm --network none dl/busybox sh -c 'echo still-here'").stdout
    assert out.strip() == "still-here"
    info = json.loads(sh("docker info --format '{{json .}}'").stdout)
    assert dict(info["DriverStatus"])["Pool Name"] == "docker-thinpool"


def test_third_run_changes_nothing():
    r = apply("growboot")
    assert r.returncode == 0 and "nothing changed" in r.stderr, r.stderr
    assert plan_steps("growboot") == []


def test_status_after_growth_is_healthy():
    r = sh("direct-lvm status --check", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    pools = json.loads(sh("direct-lvm status --json").stdout)["pools"]
    (pool,) = [p for p in pools if p["vg"] == "docker"]
    assert pool["extensions_left"] >= 1 and pool["warnings"] == []
