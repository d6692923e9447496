"""status --format prometheus, read back with a real parser (prometheus_client's), and
the last-apply record it reports."""

import json
import math

from prometheus_client.parser import text_string_to_metric_families
from test_cli import pool  # tests/unit is on sys.path (pytest prepend mode)

from direct_lvm import core, report
from direct_lvm.status import VolumeStatus


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fams, name):
    return {tuple(sorted(s.labels.items())): s.value for s in fams[name].samples}


def test_prometheus_parses_with_prometheus_client():
    pools = [
        pool(),
        pool(vg='odd"vg\\x', pool="p\nq", data_percent=None, metadata_percent=None,
             autoextend_threshold=None, autoextend_percent=None, extensions_left=None,
             monitor=""),
    ]  # fmt: skip
    volumes = [VolumeStatus(**{"vg": "docker", "lv": "docker",
                               "dm_path": "/dev/mapper/docker-docker",
                               "size": 10 << 30, "mounted_at": "/var/lib/docker"})]  # fmt: skip
    text = report.prometheus(pools, volumes, {"timestamp": 1764460800.25, "success": False})
    fams = families(text)
    assert set(fams) == {n for n in report.METRICS}  # every metric has a sample here
    for f in fams.values():
        assert f.type == "gauge" and f.documentation
    key = (("pool", "thinpool"), ("vg", "docker"))
    odd = (("pool", "p\nq"), ("vg", 'odd"vg\\x'))  # label escaping round-trips
    assert samples(fams, "direct_lvm_pool_data_percent") == {key: 12.3}  # none when unknown
    assert samples(fams, "direct_lvm_pool_metadata_percent")[key] == 4.1
    assert samples(fams, "direct_lvm_pool_size_bytes")[key] == 8 << 30
    assert samples(fams, "direct_lvm_pool_metadata_size_bytes")[odd] == 8 << 20
    assert samples(fams, "direct_lvm_pool_autoextend_steps_left") == {key: 1}
    assert samples(fams, "direct_lvm_pool_autoextend_threshold_percent") == {key: 80}
    assert samples(fams, "direct_lvm_pool_monitored") == {key: 1, odd: 0}
    assert samples(fams, "direct_lvm_pool_check_state") == {key: 0, odd: 3}
    assert samples(fams, "direct_lvm_vg_free_bytes") == {
        (("vg", "docker"),): 2 << 30,
        (("vg", 'odd"vg\\x'),): 2 << 30,
    }
    assert samples(fams, "direct_lvm_lv_size_bytes") == {
        (("lv", "docker"), ("vg", "docker")): 10 << 30
    }
    assert samples(fams, "direct_lvm_lv_mounted") == {(("lv", "docker"), ("vg", "docker")): 1}
    assert samples(fams, "direct_lvm_last_apply_timestamp_seconds") == {(): 1764460800.25}
    assert samples(fams, "direct_lvm_last_apply_success") == {(): 0}


def test_prometheus_with_nothing_managed_is_empty_but_valid():
    assert report.prometheus([], [], None) == ""
    assert families(report.prometheus([], [], {"timestamp": 1, "success": True})) != {}


def test_last_apply_record_round_trips(tmp_path):
    path = str(tmp_path / "lib" / "last-apply.json")
    assert core.last_apply(path) is None
    core.record_apply("docker/thinpool", success=True, changed=True, path=path)
    rec = core.last_apply(path)
    assert rec["success"] is True and rec["changed"] is True and rec["ref"] == "docker/thinpool"
    assert math.isfinite(rec["timestamp"]) and rec["timestamp"] > 1.6e9
    core.record_apply("docker/thinpool", success=False, error="vgcreate failed", path=path)
    rec = json.loads((tmp_path / "lib" / "last-apply.json").read_text())
    assert rec["success"] is False and rec["error"] == "vgcreate failed"
    assert [p.name for p in (tmp_path / "lib").iterdir()] == ["last-apply.json"]


def test_last_apply_record_that_is_garbage_is_none(tmp_path):
    p = tmp_path / "last-apply.json"
    for text in ("{", "[]", '{"timestamp": "x"}', "\xff"):
        p.write_text(text)
        assert core.last_apply(str(p)) is None


def test_record_apply_on_a_read_only_place_does_not_fail(tmp_path, caplog):
    (tmp_path / "file").write_text("")
    with caplog.at_level("INFO", logger="direct_lvm"):
        core.record_apply("a/b", success=True, path=str(tmp_path / "file" / "x.json"))
    assert "could not record the apply" in caplog.text


def test_metrics_timer_setup_installs_and_enables(tmp_path):
    from direct_lvm import image

    written = image.metrics_timer_setup(tmp_path)
    unit_dir = tmp_path / "etc/systemd/system"
    service = (unit_dir / "direct-lvm-metrics.service").read_text()
    assert "ExecStart=direct-lvm status --format prometheus --output " in service
    assert "/var/lib/prometheus/node-exporter/direct-lvm.prom" in service
    assert "OnUnitActiveSec=1min" in (unit_dir / "direct-lvm-metrics.timer").read_text()
    link = unit_dir / "timers.target.wants" / "direct-lvm-metrics.timer"
    assert link.is_symlink()
    assert str(link.readlink()) == "/etc/systemd/system/direct-lvm-metrics.timer"
    assert link in written
    # a package's units (the .deb's /lib/systemd/system) are used, not copied over
    pkg = tmp_path / "other"
    (pkg / "lib/systemd/system").mkdir(parents=True)
    for name in image.METRICS_UNITS:
        (pkg / "lib/systemd/system" / name).write_text("[Unit]\n")
    image.metrics_timer_setup(pkg)
    assert not (pkg / "etc/systemd/system/direct-lvm-metrics.timer").exists()
    link = pkg / "etc/systemd/system/timers.target.wants/direct-lvm-metrics.timer"
    assert str(link.readlink()) == "/lib/systemd/system/direct-lvm-metrics.timer"
