"""Issue 6, items 3, 4 and 6: growth, crash convergence and the pool-full policy, in
two boots of one root disk.

1. test_crash: every crash point of the first-boot (takeover) plan and of a growth plan
   converges to the uninterrupted result; pool-full warnings and `status --check`; a
   device smaller than its PV is refused. Leaves crash.yaml's pool on dl-a with an
   image in docker. Then poweroff.py powers the guest off at a seeded random point of
   an apply of poweroff.yaml (its own VG on dl-b).
2. The host grows dl-a from 3 to 5 GiB and attaches dl-c. test_poweroff: apply after
   the power-off converges to the uninterrupted result. test_growth: pvresize,
   vgextend, lvextend; the image survives; the third run is a no-op."""

from __future__ import annotations

import json
import os

import pytest

from guestkit.vm import Disk, blank_disk

from .harness import in_guest_tests, run_suites

pytestmark = pytest.mark.guest

SEED = int(os.environ.get("DL_POWEROFF_SEED", "6"))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    w = tmp_path_factory.mktemp("growth")
    blank_disk(w / "a.raw", "3G")
    blank_disk(w / "b.raw", "1G")
    return w


@pytest.fixture(scope="module")
def crash_boot(guest_image, deb, work):
    disks = [Disk(work / "a.raw", serial="dl-a"), Disk(work / "b.raw", serial="dl-b")]
    return run_suites(guest_image, deb, work / "boot1", ["test_crash"], disks,
                      root_overlay=work / "root.qcow2", facts={"poweroff_seed": SEED},
                      after="python3 /job/in_guest/poweroff.py\n", timeout=1800)  # fmt: skip


@pytest.fixture(scope="module")
def growth_boot(guest_image, deb, work, crash_boot):
    assert crash_boot.result.ok, crash_boot.result.summary()
    with (work / "a.raw").open("r+b") as f:  # the cloud volume was resized
        f.truncate(5 << 30)
    blank_disk(work / "c.raw", "1G")  # and a new one attached
    disks = [Disk(work / f"{n}.raw", serial=f"dl-{n}") for n in ("a", "b", "c")]
    return run_suites(guest_image, deb, work / "boot2", ["test_poweroff", "test_growth"],
                      disks, root_overlay=work / "root.qcow2")  # fmt: skip


@pytest.mark.parametrize("name", in_guest_tests("test_crash"))
def test_crash(crash_boot, name):
    crash_boot.check(name)


def test_every_crash_point_was_covered(crash_boot):
    data = json.loads((crash_boot.result.out_dir / "crash-points.json").read_text())
    points = [e for entries in data.values() for e in entries]
    print(f"crash points covered: {len(points)} "
          + ", ".join(f"{k}: {len(v)}" for k, v in data.items()))  # fmt: skip
    assert len(data["first_boot"]) >= 7 and len(data["growth"]) >= 4
    assert len(data["docker_running"]) == 2
    assert all(e["ok"] and e["crash_rc"] == 99 for e in points), points
    assert [e["k"] for e in data["first_boot"]] == list(range(1, len(data["first_boot"]) + 1))


@pytest.mark.parametrize("name", in_guest_tests("test_growth"))
def test_growth(growth_boot, name):
    growth_boot.check(name)


def test_guest_was_powered_off_during_apply(crash_boot):
    r = crash_boot.result
    record = json.loads((r.out_dir / "poweroff.json").read_text())
    print(f"power-off: {record}")
    assert record["seed"] == SEED and 0 < record["delay_s"] < record["reference_apply_s"]
    # sysrq 'o' powers off without the job runner: no isa-debug-exit verdict, and
    # after.sh never returned (it would have made the job exit 97)
    assert r.exit_port_value is None and r.verdict != 97, r.summary()


@pytest.mark.parametrize("name", in_guest_tests("test_poweroff"))
def test_poweroff(growth_boot, name):
    growth_boot.check(name)
