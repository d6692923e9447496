"""scripts/bench's pure parts: reading -X importtime, cloud-init's analyze dump, the lvm
process count and the table's ratios (the guest runs themselves are the benchmark)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench = _load("bench_under_test", ROOT / "scripts" / "bench.py")
guest = _load("bench_guest_under_test", ROOT / "scripts" / "guest-jobs" / "bench_guest.py")

IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |   encodings
DL-IMPORT-MARK
import time:       200 |        200 |     direct_lvm._compat
import time:       300 |        500 |   direct_lvm
import time:      1000 |       4000 |       jinja2.utils
import time:       500 |       6000 |     jinja2
import time:      2000 |       9000 | direct_lvm.cli
import time:       700 |        700 | json
"""


def test_importtime_counts_top_level_imports_after_the_marker():
    entries = bench.parse_importtime(IMPORTTIME)
    assert "encodings" not in [m for _, m, _ in entries], "before the marker: start-up"
    assert entries[0] == (2, "direct_lvm._compat", 200)
    assert [(lvl, m) for lvl, m, _ in entries if lvl == 0] == [(0, "direct_lvm.cli"), (0, "json")]
    assert bench.top_level_ms(entries) == 9.7
    assert any(m.startswith("jinja2") for _, m, _ in entries)


def test_cloudinit_events_take_the_last_start_finish_pair(tmp_path):
    events = [
        {"name": "init-local", "event_type": "start", "timestamp": 10.0},
        {"name": "init-local/config-direct_lvm", "event_type": "start", "timestamp": 11.0},
        {"name": "init-local/config-direct_lvm", "event_type": "finish", "timestamp": 29.0},
        {"name": "init-local", "event_type": "finish", "timestamp": 40.0},
        # the next boot (the log spans boots)
        {"name": "init-local", "event_type": "start", "timestamp": 100.0},
        {"name": "init-local/config-direct_lvm", "event_type": "start", "timestamp": 101.0},
        {"name": "init-local/config-direct_lvm", "event_type": "finish", "timestamp": 101.5},
        {"name": "init-local", "event_type": "finish", "timestamp": 104.0},
    ]
    (tmp_path / "analyze-dump.json").write_text(json.dumps(events))
    took = bench.cloudinit_events(tmp_path)
    assert took == {"init-local": 4.0, "init-local/config-direct_lvm": 0.5}
    assert bench.cloudinit_events(tmp_path / "missing") == {}


def test_lvm_processes_are_counted_from_logged_command_lines():
    log = "\n".join([
        "direct-lvm: [   12 ms] + lvm fullreport --reportformat json",
        "direct-lvm: [  900 ms] + lvcreate -n thinpool docker -l 80%VG",
        "direct-lvm: [  950 ms] + systemctl daemon-reload",
        "+ pvcreate /dev/vdb",
        "+ printf 'activation {'",
        "++ lvs -o+seg_monitor docker/thinpool",
        "  Volume group \"docker\" successfully created",
    ])  # fmt: skip
    assert len(guest.LVM_LINE.findall(log)) == 3


def test_commands_in_one_lvm_shell_are_one_process():
    log = "\n".join([
        "direct-lvm: [   12 ms] + lvm fullreport --reportformat json",
        "direct-lvm: [   13 ms] (started before the imports; no other run held the lock since)",
        "direct-lvm: [  900 ms] + vgcreate --addtag direct_lvm docker /dev/vdb",
        "direct-lvm: [ 1300 ms] + lvcreate --yes --type thin-pool docker",
        "direct-lvm: [ 1301 ms] (in the lvm shell, pid 486)",
        "direct-lvm: [ 2800 ms] + write /etc/direct-lvm/docker-storage.env (442 bytes)",
        "direct-lvm: [ 2900 ms] + lvm fullreport --reportformat json",
        "direct-lvm: [ 2901 ms] (in the lvm shell, pid 486)",
        "direct-lvm: [ 3100 ms] docker/thinpool: 5 step(s) applied and verified in 3.0 s",
    ])  # fmt: skip
    assert guest.lvm_processes(log) == (3, 4)
    # a command's time runs to the next line that is not about where it ran
    assert guest.command_seconds(log)["lvcreate"] == [1.5]


def test_ratios_are_medians_over_rounds_and_a_failed_run_is_named():
    rows = [
        {"group": "compare", "side": side, "round": r, "seconds": s, "lvm": lvm,
         "rss_kib": 20480, "failed": False}
        for side, lvm, secs in (("manual", 7, (10.0, 8.0, 12.0)), ("apply", 4, (5.0, 6.0, 4.0)),
                                ("noop", 1, (2.0, 2.5, 3.0)))
        for r, s in zip((1, 2, 3), secs)
    ]  # fmt: skip
    rows.append({"group": "compare", "side": "plan", "round": 1, "seconds": 9.0, "lvm": 1,
                 "rss_kib": 1, "failed": True, "label": "plan r1", "rc": 1})  # fmt: skip
    boot = bench.Boot("1-compare", ok=True, rows=rows)
    lines, manual = bench.compare_section(boot, 3)
    assert manual == 10.0
    apply_row = next(ln for ln in lines if ln.startswith("| `direct-lvm apply"))
    assert "| 5.00 | 0.50 | <= 0.6 | yes | 4 (4) |" in apply_row
    noop_row = next(ln for ln in lines if ln.startswith("| no-op"))
    assert "| 2.50 | 0.25 | <= 0.25 | yes |" in noop_row
    plan_row = next(ln for ln in lines if ln.startswith("| `plan`"))
    assert "| n/a |" in plan_row and "FAILED" in plan_row
    assert bench.failures([boot]) == ["boot 1-compare: plan r1 (exit 1)"]


def test_only_a_guest_that_died_before_its_job_is_booted_again(tmp_path):
    from guestkit.vm import JobResult

    def result(console: str, verdict=None, job_start=None) -> JobResult:
        log = tmp_path / "console.log"
        log.write_text(console)
        return JobResult(verdict=verdict, qemu_status=0, duration_s=20.0, out_dir=tmp_path,
                         console_log=log, job_start_s=job_start)  # fmt: skip

    panic = "[ 14.69] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\n"
    assert bench._died_before_job(result(panic))
    assert not bench._died_before_job(result(panic, job_start=60.0))
    assert not bench._died_before_job(result("[bench guest   3.0s] mode scale\n" + panic))
    assert not bench._died_before_job(result("Rebooting automatically due to panic= boot\n"))
    assert not bench._died_before_job(result(panic, verdict=0))


def test_scale_rows_give_one_line_per_row_with_pool_sizes_and_the_plug_time():
    rows = [
        {"group": "scale-plug", "disks": 34, "seen_s": 12.5, "settled_s": 40.25},
        *[
            {"group": "scale", "row": "1 x 64 TiB", "what": what, "seconds": s, "lvm": lvm,
             "rss_kib": 24 * 1024, "failed": False}
            for what, s, lvm in (("apply", 9.0, 4), ("noop", 2.5, 1), ("status", 3.0, 2))
        ],
        {"group": "scale", "row": "32 x 4 GiB", "what": "apply", "seconds": 1.0, "lvm": 4,
         "rss_kib": 1024, "failed": True},
        {"group": "scale-pool", "row": "1 x 64 TiB", "lvs": [
            {"lv_name": "thinpool", "lv_metadata_size": str(3498 << 20),
             "chunk_size": "524288", "vg_size": str(64 << 40)}]},
        {"group": "scale-steps", "row": "1 x 64 TiB",
         "took": {"vgcreate": [1.25], "lvcreate": [35.5], "wipefs": [0.5, 0.25]}},
        {"group": "accept-verdict", "line": "io.containerd.snapshotter.v1 devmapper ok",
         "failed": False},
    ]  # fmt: skip
    lines = bench.scale_section(bench.Boot("3-ci2", ok=True, rows=rows))
    assert "boot 3-ci2" in lines[0] and "34 disks in lsblk after 12.50 s" in lines[0]
    assert "udev settled after 40.25 s" in lines[0]
    big = next(ln for ln in lines if ln.startswith("| 1 x 64 TiB"))
    assert big == ("| 1 x 64 TiB | 9.00 | 2.50 | 3.00 | 4/1/2 | 24/24/24 | 64 TiB | 3.416 GiB "
                   "| 512 KiB | 1.25 / 35.50 / 0.75 (2) |")  # fmt: skip
    failed = next(ln for ln in lines if ln.startswith("| 32 x 4 GiB"))
    assert "| FAILED | n/a | n/a | 4/?/? |" in failed
    assert failed.endswith("| n/a | n/a | n/a | n/a / n/a / n/a |")
    assert any("accepts the 64 TiB pool" in ln for ln in lines)


def test_the_scale_disks_are_34_sparse_qcow2_on_scsi(tmp_path, monkeypatch):
    made: list[tuple[str, str]] = []
    monkeypatch.setattr(bench, "qcow2_disk", lambda p, size: made.append((p.name, size)) or p)
    disks = bench.scale_disks(tmp_path)
    assert len(disks) == 34 and all(d.scsi and d.format == "qcow2" for d in disks)
    assert made[0] == ("s01.qcow2", "4G") and made[-2:] == [("t1.qcow2", "1T"),
                                                             ("t64.qcow2", "64T")]  # fmt: skip
    # the guest's rows name exactly these serials
    wanted = {s for _, ss in guest.SCALE_ROWS for s in ss}
    assert wanted == {d.serial for d in disks}


def test_an_applys_commands_are_timed_from_its_stamped_lines():
    out = "\n".join([
        "direct-lvm: [  2135 ms] + systemctl show docker.service -p ActiveState",
        "direct-lvm: [  4734 ms] + wipefs --no-act --json /dev/sdb",
        "direct-lvm: [  4834 ms] + wipefs --no-act --json /dev/sdc",
        "direct-lvm: [  6894 ms] step 3/5: thin pool scale0/thinpool does not exist",
        "direct-lvm: [  9362 ms] + lvcreate --yes --type thin-pool --name thinpool",
        "direct-lvm: [ 17061 ms] step 4/5: missing: docker's storage options",
        "direct-lvm: [ 17062 ms] + write /etc/direct-lvm/docker-storage.env (99 bytes)",
        "direct-lvm: [ 17070 ms] cat > /etc/direct-lvm/docker-storage.env <<'EOF'",
        "DOCKER_STORAGE_OPTIONS=--storage-driver=devicemapper",
        "direct-lvm: [ 18494 ms] scale0/thinpool: 5 step(s) applied and verified in 16.3 s",
    ])  # fmt: skip
    took = guest.command_seconds(out)
    assert took == {"systemctl": [2.599], "wipefs": [0.1, 2.06], "lvcreate": [7.699]}
