"""The scriptable interface on real LVM, in the core boot, after test_core.py (which made
docker/thinpool from core.yaml): apply --json on the converged system, status --check's
monitoring-plugin codes on a healthy pool, a pool past its threshold with no room
(WARNING) and the same pool filled until writes fail (CRITICAL), and the Prometheus
textfile written by direct-lvm-metrics.service under systemd. Each prometheus output is
saved in /job/out (metrics-*.prom) and parsed on the host with prometheus_client.

Tests run in file order."""

import json
import os
import subprocess
import time
from pathlib import Path

OUT = Path(os.environ.get("DL_OUT", "/job/out"))
CONFIGS = os.environ.get("DL_CONFIGS", "/job/configs")
PROFILE = "/etc/lvm/profile/fullvg-pool.profile"
PROM = "/var/lib/prometheus/node-exporter/direct-lvm.prom"


def sh(cmd, check=True):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd!r} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def save_prometheus(name):
    r = sh("direct-lvm status --format prometheus")
    (OUT / f"metrics-{name}.prom").write_text(r.stdout)
    return r.stdout


def test_apply_json_on_the_converged_system():
    r = sh(f"direct-lvm apply --json {CONFIGS}/core.yaml")
    doc = json.loads(r.stdout)
    assert doc["format"] == 1 and doc["changed"] is False, doc
    assert doc["ref"] == "docker/thinpool" and doc["steps"] == [] and doc["files_written"] == []
    assert "seg_monitor: monitored" in doc["verified"]
    rec = json.loads(Path("/var/lib/direct-lvm/last-apply.json").read_text())
    assert rec["success"] is True and rec["ref"] == "docker/thinpool"
    assert abs(rec["timestamp"] - time.time()) < 600


def test_plan_exit_code_is_0_when_converged():
    r = sh(f"direct-lvm plan --exit-code {CONFIGS}/core.yaml", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    r = sh(f"direct-lvm plan --exit-code --json {CONFIGS}/core.yaml", check=False)
    assert r.returncode == 0 and json.loads(r.stdout)["format"] == 1


def test_status_check_ok_on_a_healthy_pool():
    r = sh("direct-lvm status --check", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("DIRECT-LVM OK - docker/thinpool data "), r.stdout
    assert "| data_percent=" in r.stdout and ";80;100;0;100" in r.stdout
    save_prometheus("healthy")


def _fill(device, mib, seek=0):
    """Write mib MiB of zeros (dm-thin provisions them all) from offset seek MiB."""
    return sh(["dd", "if=/dev/zero", f"of={device}", "bs=1M", f"count={mib}", f"seek={seek}",
               "oflag=direct", "conv=fsync", "status=none"], check=False)  # fmt: skip


def test_status_check_warning_then_critical(tmp_path):
    """A pool direct-lvm owns (tagged VG), 90% of its VG, autoextend 80/20 (one step needs
    18% of the VG: no room), --errorwhenfull y. Filled to 85%: WARNING (1). Filled on
    until writes fail: CRITICAL (2)."""
    img = tmp_path / "full.img"
    sh(["truncate", "-s", "192M", str(img)])
    loop = sh(["losetup", "--find", "--show", str(img)]).stdout.strip()
    try:
        Path(PROFILE).write_text(
            "activation {\n\tthin_pool_autoextend_threshold = 80\n"
            "\tthin_pool_autoextend_percent = 20\n}\n"
        )
        sh(["vgcreate", "--addtag", "direct_lvm", "fullvg", loop])
        sh(["lvcreate", "--yes", "--type", "thin-pool", "--extents", "90%VG", "--name", "pool",
            "--metadataprofile", "fullvg-pool", "--zero", "n", "fullvg"])  # fmt: skip
        sh(["lvchange", "--errorwhenfull", "y", "fullvg/pool"])  # lvcreate refuses it (2.03.16)
        size = int(sh("lvs --noheadings --units b --nosuffix -o lv_size fullvg/pool").stdout)
        sh(["lvcreate", "--yes", "--virtualsize", f"{2 * size}b", "--thin", "--name", "thin",
            "fullvg/pool"])  # fmt: skip
        mib = size * 85 // 100 >> 20
        _fill("/dev/fullvg/thin", mib)
        r = sh("direct-lvm status --check", check=False)
        assert r.returncode == 1, r.stdout + r.stderr
        assert r.stdout.startswith("DIRECT-LVM WARNING - "), r.stdout
        assert "fullvg/pool data 8" in r.stdout and "past 80% with no room" in r.stdout
        assert "'fullvg/pool data_percent'=8" in r.stdout  # two pools: labelled perfdata
        j = sh("direct-lvm status --check --json", check=False)
        assert j.returncode == 1 and json.loads(j.stdout)["check"]["state"] == "WARNING"
        save_prometheus("warning")

        # on until the pool is full: with --errorwhenfull y the writes fail at once
        w = _fill("/dev/fullvg/thin", (2 * size >> 20) - mib, seek=mib)
        assert w.returncode != 0, "dd should fail on a full pool"
        lv = json.loads(sh("lvs --reportformat json -o data_percent,lv_attr fullvg/pool")
                        .stdout)["report"][0]["lv"][0]  # fmt: skip
        r = sh("direct-lvm status --check", check=False)
        assert r.returncode == 2, f"{lv}\n{r.stdout}{r.stderr}"
        assert r.stdout.startswith("DIRECT-LVM CRITICAL - "), r.stdout
        assert "fullvg/pool data 100.0%" in r.stdout, (lv, r.stdout)
        (OUT / "critical-lvs.json").write_text(json.dumps(lv))
        save_prometheus("critical")
    finally:
        sh("vgremove -ff -y fullvg", check=False)
        sh(["losetup", "-d", loop], check=False)
        Path(PROFILE).unlink(missing_ok=True)
    assert sh("direct-lvm status --check", check=False).returncode == 0


def test_metrics_timer_writes_the_textfile_under_systemd():
    """image-setup --metrics-timer's units, run by systemd: the service's bare
    `direct-lvm` is found on systemd's search path and the file is written atomically."""
    sh(["python3", "-c", "from direct_lvm.image import metrics_timer_setup as m; m()"])
    sh("systemctl daemon-reload")
    assert sh("systemctl is-enabled direct-lvm-metrics.timer").stdout.strip() == "enabled"
    sh("systemctl start direct-lvm-metrics.service")  # oneshot: returns when it is done
    text = Path(PROM).read_text()
    assert 'direct_lvm_pool_data_percent{vg="docker",pool="thinpool"}' in text
    assert "direct_lvm_last_apply_success 1" in text
    assert [p.name for p in Path(PROM).parent.iterdir()] == ["direct-lvm.prom"]
    (OUT / "metrics-service.prom").write_text(text)
    sh("systemctl start direct-lvm-metrics.timer")
    assert sh("systemctl is-active direct-lvm-metrics.timer").stdout.strip() == "active"
