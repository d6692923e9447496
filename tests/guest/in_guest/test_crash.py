"""Crash convergence (issue 6, item 4) and the pool-full policy (item 6), in one boot.

For every step k of a plan, `apply` is stopped right after step k (the test-only hook
DIRECT_LVM_TEST_CRASH_AFTER_STEP=k exits 99), then run again; the normalized final state
must equal that of an uninterrupted apply. Two plans are covered: the first-boot plan of
a takeover (docker running on overlay2 with an image: stop, move aside, profile,
vgcreate, lvcreate, drop-in, daemon-reload, restart) and a growth plan (pvresize,
vgextend, lvchange, lvextend). Tests run in file order; the last ones leave the pool of
crash.yaml with an image in it for the next boot (the growth-across-boots test)."""

import json
import os
import re
import time
from pathlib import Path

from crashkit import (
    CRASH_EXIT,
    DISKS,
    DROPIN,
    ENV,
    apply,
    diff,
    import_busybox,
    log,
    plan_steps,
    reset_system,
    sh,
    snapshot_pristine_docker,
    state,
)

OUT = Path(os.environ.get("DL_OUT", "/job/out"))
RESULTS = OUT / "crash-points.json"


def _record(name, entries):
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[name] = entries
    RESULTS.write_text(json.dumps(data, indent=2))


def _every_k(name, config, steps, reference, prepare, args=(), ks=None):
    """Crash after each step 1..len(steps) (or each of ks), re-run, compare with the
    reference; returns failures. `steps` is the plan from the state `prepare` makes."""
    entries, failures = [], []
    for k in ks or range(1, len(steps) + 1):
        started = time.monotonic()
        prepare()
        crashed = apply(config, *args, crash_after=k)
        rerun = apply(config, *args)
        got = state() if rerun.returncode == 0 else None
        problems = []
        if crashed.returncode != CRASH_EXIT:
            problems.append(f"crashed run exited {crashed.returncode}:\n{crashed.stderr}")
        if rerun.returncode != 0:
            problems.append(f"re-run exited {rerun.returncode}:\n{rerun.stderr}")
        elif d := diff(reference, got):
            problems.append("state differs from the uninterrupted run:\n  " + "\n  ".join(d))
        resumed = re.findall(r"step \d+/\d+: (.*)", rerun.stderr)
        entries.append({"k": k, "after": steps[k - 1]["shell"],
                        "crash_rc": crashed.returncode, "rerun_rc": rerun.returncode,
                        "rerun_steps": resumed, "ok": not problems})  # fmt: skip
        log(
            f"{name} k={k} after {entries[-1]['after']!r}: rerun ran {len(resumed)} step(s)"
            f" -> {'ok' if not problems else 'FAILED'} ({time.monotonic() - started:.0f} s)"
        )
        for p in problems:
            log(p)
        if problems:
            failures.append(f"k={k} ({entries[-1]['after']}): " + "\n".join(problems))
    _record(name, entries)
    return failures


# ------------------------------------------------------------------ growth plan


GROW_IMG = "/var/tmp/dl-grow.img"
GROW_LOOP = "/dev/loop7"  # fixed, so every k sees the same PV name
PRE_CFG = "/var/tmp/dl-pregrow.yaml"
GROW_CFG = "/var/tmp/dl-grow.yaml"


def _pre_growth():
    """crash.yaml's settings on a 1 GiB loop device, then its backing file grown to
    3 GiB (what a resized cloud volume looks like to LVM); docker stopped with no storage
    of its own (so the growth plan is the LVM steps only). grow's config adds dl-b."""
    snapshot_pristine_docker()
    reset_system(start_docker=False)
    sh(["rm", "-rf", "/var/lib/docker"])
    sh(["losetup", "-d", GROW_LOOP], check=False)
    sh(["rm", "-f", GROW_IMG])
    sh(["truncate", "-s", "1G", GROW_IMG])
    sh(["modprobe", "loop"], check=False)
    sh(["losetup", GROW_LOOP, GROW_IMG])
    common = "  runtime: docker-devicemapper\n  error_when_full: {}\n  wait_timeout: 0\n"
    Path(PRE_CFG).write_text(f"direct_lvm:\n  devices: [{GROW_LOOP}]\n"
                             + common.format("true"))  # fmt: skip
    Path(GROW_CFG).write_text(f"direct_lvm:\n  devices: [{GROW_LOOP}, {DISKS[1]}]\n"
                              + common.format("false"))  # fmt: skip
    r = apply(PRE_CFG, "--no-restart")
    assert r.returncode == 0, r.stderr
    sh(["truncate", "-s", "3G", GROW_IMG])
    sh(["losetup", "--set-capacity", GROW_LOOP])


def test_growth_plan_every_crash_point_converges():
    _pre_growth()
    steps = plan_steps(GROW_CFG, "--no-restart")
    cmds = [s["shell"].split()[0] for s in steps]
    assert cmds[:2] == ["pvresize", "vgextend"] and "lvextend" in cmds, steps
    assert any(s["shell"].startswith("lvchange --errorwhenfull n") for s in steps), steps
    r = apply(GROW_CFG, "--no-restart")
    assert r.returncode == 0, r.stderr
    reference = state()
    (vg,) = [v for rep in reference["lvm"] for v in rep["vg"] if v["vg_name"] == "docker"]
    (pool,) = [lv for rep in reference["lvm"] for lv in rep["lv"] if lv["lv_name"] == "thinpool"]
    assert int(vg["vg_extent_count"]) >= (3 << 30) // (4 << 20) - 2  # both disks, grown
    assert int(pool["lv_size"]) == int(vg["vg_extent_count"]) * 80 // 100 * (4 << 20)
    again = apply(GROW_CFG, "--no-restart")
    assert again.returncode == 0 and "nothing changed" in again.stderr, again.stderr
    failures = _every_k("growth", GROW_CFG, steps, reference, _pre_growth, ("--no-restart",))
    assert not failures, "\n\n".join(failures)
    reset_system(start_docker=False)
    sh(["losetup", "-d", GROW_LOOP])


# ------------------------------------------------------------------ first-boot plan


def _stopped_takeover():
    """Blank disk; docker stopped with its overlay2 storage (and an image) in place."""
    reset_system(start_docker=False)


def test_first_boot_plan_every_crash_point_converges():
    """Every step of the first-boot plan but docker's stop and restart (next test): the
    takeover with docker stopped, --no-restart. No dockerd start, so every k is cheap."""
    snapshot_pristine_docker()
    _stopped_takeover()
    steps = plan_steps("crash", "--no-restart")
    shells = [s["shell"] for s in steps]
    # no image-setup in this guest: the drop-in is written here, so daemon-reload stays
    expect = ["cat > /etc/lvm/profile", "vgcreate", "lvcreate", "lvchange --errorwhenfull y",
              "mv ", "cat > /etc/direct-lvm/docker-storage.env", "cat > /etc/systemd",
              "systemctl daemon-reload", "cat > /var/lib/direct-lvm/devices.json"]  # fmt: skip
    assert [next(w for w in expect if s.startswith(w)) for s in shells] == expect, shells
    r = apply("crash", "--no-restart")
    assert r.returncode == 0, r.stderr
    reference = state()
    assert len(reference["backups"]) == 1 and "overlay2" in reference["backups"][0]
    assert reference["files"][DROPIN] is not None and reference["files"][ENV] is not None
    failures = _every_k("first_boot", "crash", steps, reference, _stopped_takeover,
                        ("--no-restart",))  # fmt: skip
    assert not failures, "\n\n".join(failures)


def test_pool_left_half_made_by_a_stopped_lvcreate_converges():
    """A power-off inside `lvcreate --type thin-pool` (seen once in CI's power-off test)
    leaves the pool's name on a plain metadata-sized LV with our tag, which lvcreate got:
    made here as lvm leaves it, after a run stopped right after vgcreate. The re-run
    removes it, creates the pool and ends where an uninterrupted apply ends."""
    _stopped_takeover()
    r = apply("crash", "--no-restart")
    assert r.returncode == 0, r.stderr
    reference = state()
    _stopped_takeover()
    shells = [s["shell"] for s in plan_steps("crash", "--no-restart")]
    k = next(i for i, s_ in enumerate(shells, 1) if s_.startswith("vgcreate"))
    assert apply("crash", "--no-restart", crash_after=k).returncode == CRASH_EXIT
    sh("lvcreate --yes --name thinpool --size 8m --addtag direct_lvm docker")
    rerun = apply("crash", "--no-restart")
    log(f"re-run over the half-made pool:\n{rerun.stderr}")
    assert rerun.returncode == 0, rerun.stderr
    assert re.search(r"step \d+/\d+: docker/thinpool is a 8\.00 MiB plain LV tagged direct_lvm",
                     rerun.stderr), rerun.stderr  # fmt: skip
    assert diff(reference, state()) == []


def test_docker_stop_and_restart_crash_points_converge():
    """The same plan with docker running on overlay2 (apply restarts it): crash right
    after `systemctl stop` and right after `systemctl restart`."""
    reset_system()
    steps = plan_steps("crash")
    shells = [s["shell"] for s in steps]
    ks = [k for k, sh_ in enumerate(shells, 1)
          if sh_.startswith(("systemctl stop", "systemctl restart"))]  # fmt: skip
    assert len(ks) == 2, shells
    r = apply("crash")
    assert r.returncode == 0, r.stderr
    reference = state()
    assert reference["docker"] == {"driver": "devicemapper", "pool": "docker-thinpool"}
    failures = _every_k("docker_running", "crash", steps, reference, reset_system, ks=ks)
    assert not failures, "\n\n".join(failures)
    # the system is left as the reference: the pool of crash.yaml, docker on it
    assert diff(reference, state()) == []


def test_error_when_full_is_set_on_the_created_pool():
    out = json.loads(sh("lvs --reportformat json -o lv_when_full docker/thinpool").stdout)
    assert out["report"][0]["lv"][0]["lv_when_full"] == "error"


def test_image_on_the_pool_for_the_next_boot():
    import_busybox("dl/busybox")
    out = sh("docker run --rm --network none dl/busybox sh -c 'echo on-the-pool'").stdout
    assert out.strip() == "on-the-pool"
    sh("sync")


# ------------------------------------------------------------------ pool-full policy


def test_status_check_is_0_on_a_healthy_pool():
    r = sh("direct-lvm status --check", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning" not in r.stderr
    (pool,) = json.loads(sh("direct-lvm status --json").stdout)["pools"]
    assert pool["warnings"] == [] and pool["extensions_left"] >= 1
    assert pool["when_full"] == "error"


FULL_PROFILE = "/etc/lvm/profile/fullvg-pool.profile"


def test_full_pool_with_no_room_warns_and_check_exits_1(tmp_path):
    """A pool direct-lvm owns (tagged VG), 90% of its VG, autoextend 80/20 (one step
    needs 18% of the VG: no room), filled past 80% through a thin LV."""
    img = tmp_path / "full.img"
    sh(["truncate", "-s", "320M", str(img)])
    loop = sh(["losetup", "--find", "--show", str(img)]).stdout.strip()
    try:
        Path(FULL_PROFILE).write_text(
            "activation {\n\tthin_pool_autoextend_threshold = 80\n"
            "\tthin_pool_autoextend_percent = 20\n}\n"
        )
        sh(["vgcreate", "--addtag", "direct_lvm", "fullvg", loop])
        sh(["lvcreate", "--yes", "--type", "thin-pool", "--extents", "90%VG", "--name", "pool",
            "--metadataprofile", "fullvg-pool", "--zero", "n", "fullvg"])  # fmt: skip
        size = int(sh("lvs --noheadings --units b --nosuffix -o lv_size fullvg/pool").stdout)
        sh(["lvcreate", "--yes", "--virtualsize", f"{size}b", "--thin", "--name", "thin",
            "fullvg/pool"])  # fmt: skip
        mib = size * 85 // 100 >> 20
        sh(["dd", "if=/dev/urandom", "of=/dev/fullvg/thin", "bs=1M", f"count={mib}",
            "oflag=direct", "status=none"])  # fmt: skip
        r = sh("direct-lvm status --check", check=False)
        assert r.returncode == 1, r.stdout + r.stderr  # monitoring-plugins' WARNING
        assert r.stdout.startswith("DIRECT-LVM WARNING - "), r.stdout
        assert re.search(r"warning: fullvg/pool data is \d+(\.\d+)?% full \(threshold 80%\)",
                         r.stderr), r.stderr  # fmt: skip
        assert "docker/thinpool" not in r.stderr  # the healthy pool has no warning
        assert sh("direct-lvm status", check=False).returncode == 0  # only --check alerts
        pools = {p["vg"]: p for p in json.loads(sh("direct-lvm status --json").stdout)["pools"]}
        assert pools["fullvg"]["extensions_left"] == 0 and pools["fullvg"]["warnings"]
        assert pools["fullvg"]["data_percent"] >= 80
        j = sh("direct-lvm status --json --check", check=False)
        assert j.returncode == 1
        assert json.loads(j.stdout)["check"]["state"] == "WARNING"
    finally:
        sh("vgremove -ff -y fullvg", check=False)
        sh(["losetup", "-d", loop], check=False)
        Path(FULL_PROFILE).unlink(missing_ok=True)
    assert sh("direct-lvm status --check", check=False).returncode == 0


# ------------------------------------------------------------------ shrink refusal


def test_device_smaller_than_its_pv_is_refused(tmp_path):
    """A PV whose device shrank (a loop device over a truncated file): refused, exit 2,
    nothing changed."""
    img = tmp_path / "shrunk.img"
    sh(["truncate", "-s", "256M", str(img)])
    loop = sh(["losetup", "--find", "--show", str(img)]).stdout.strip()
    try:
        sh(["vgcreate", "--addtag", "direct_lvm", "shrunkvg", loop])
        sh(["truncate", "-s", "128M", str(img)])
        sh(["losetup", "--set-capacity", loop])
        config = tmp_path / "shrunk.yaml"
        config.write_text(f"direct_lvm:\n  vg: shrunkvg\n  devices: [{loop}]\n"
                          "  wait_timeout: 0\n")  # fmt: skip
        before = sh(["vgs", "--reportformat", "json", "-o", "vg_all", "shrunkvg"]).stdout
        r = sh(["direct-lvm", "apply", str(config)], check=False)
        assert r.returncode == 2, r.stderr
        assert f"{loop} is 128.00 MiB" in r.stderr, r.stderr
        assert "smaller than its physical volume in 'shrunkvg'" in r.stderr
        assert "fix: grow the volume back" in r.stderr
        assert sh(["vgs", "--reportformat", "json", "-o", "vg_all", "shrunkvg"]).stdout == before
    finally:
        sh("vgremove -ff -y shrunkvg", check=False)
        sh(["losetup", "-d", loop], check=False)
