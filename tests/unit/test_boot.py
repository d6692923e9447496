"""Where the boot path finds its config (the key, else the write_files file), and that it
runs once a boot."""

import json
from pathlib import Path

import pytest

from direct_lvm import core
from direct_lvm.errors import ConfigError


def test_key_wins_over_the_file(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text("direct_lvm: {devices: [/dev/vdc]}\n")
    assert core.boot_config({"direct_lvm": {"devices": ["/dev/vdb"]}}, str(f)) == {
        "devices": ["/dev/vdb"]
    }


def test_file_when_no_key(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text("# comment\ndirect_lvm:\n  devices: [/dev/vdc]\n")
    assert core.boot_config({"users": []}, str(f)) == {"devices": ["/dev/vdc"]}


def test_nothing_configured(tmp_path):
    assert core.boot_config({}, str(tmp_path / "absent.yaml")) is None


def test_broken_file_blocks_docker_and_raises(tmp_path, monkeypatch):
    blocked = []
    monkeypatch.setattr(core, "block_runtime_for_this_boot", lambda units: blocked.append(units))
    f = tmp_path / "config.yaml"
    f.write_text("direct_lvm: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        core.boot_config({}, str(f))
    assert blocked == [core.DOCKER_UNITS]


def test_boot_with_bad_config_blocks_docker_and_raises(monkeypatch):
    blocked = []
    monkeypatch.setattr(core, "block_runtime_for_this_boot", lambda units: blocked.append(units))
    with pytest.raises(ConfigError, match="data_percent"):
        core.boot({"devices": ["/dev/vdb"], "data_percent": 150})
    assert blocked == [core.DOCKER_UNITS]


def test_applies_wait_for_each_other(tmp_path, caplog):
    import threading

    lock = str(tmp_path / "run" / "direct-lvm.lock")
    entered = threading.Event()
    with core.exclusive(lock):  # a first run holds the lock
        t = threading.Thread(target=lambda: (core.exclusive(lock).__enter__(), entered.set()))
        with caplog.at_level("INFO", logger="direct_lvm"):
            t.start()
            assert not entered.wait(0.3)  # the second run waits...
            assert "waiting for another direct-lvm run" in caplog.text
    t.join(5)
    assert entered.is_set()  # ...and goes on once the first is done


def test_a_failed_containerd_boot_holds_back_containerd_not_docker(monkeypatch):
    blocked = []
    monkeypatch.setattr(core, "block_runtime_for_this_boot", lambda units: blocked.append(units))
    with pytest.raises(ConfigError, match="data_percent"):
        core.boot({"runtime": "containerd-devmapper", "devices": ["/dev/vdb"],
                   "data_percent": 150})  # fmt: skip
    assert blocked == [("containerd.service",)]


def test_a_broken_file_naming_containerd_holds_back_containerd(tmp_path, monkeypatch):
    blocked = []
    monkeypatch.setattr(core, "block_runtime_for_this_boot", lambda units: blocked.append(units))
    f = tmp_path / "config.yaml"
    f.write_text("direct_lvm:\n  runtime: containerd-devmapper\n  devices: /dev/vdb\n")
    with pytest.raises(ConfigError):
        core.boot(core.boot_config({}, str(f)))
    assert blocked == [("containerd.service",)]


@pytest.mark.parametrize(
    "mapping", [None, [], {"runtime": 7}, {"runtime": "docker-overlay2"}, {"devices": []}]
)
def test_runtime_units_default_to_docker(mapping):
    assert core.runtime_units(mapping) == core.DOCKER_UNITS


BROKEN_FILES = {
    "undecodable": b"direct_lvm: {devices: [/dev/vdb]}\n\xff\n",
    "duplicate-key": b"direct_lvm: {devices: [/dev/vdb]}\ndirect_lvm: {devices: [/dev/vdc]}\n",
    "nan": b"direct_lvm: {devices: [/dev/vdb], wait_timeout: .nan}\n",
    "reserved-lv-name": b"direct_lvm: {devices: [/dev/vdb], pool: x_tdata}\n",
    "schema": b"direct_lvm: {devices: /dev/vdb}\n",
    "a-directory": None,
    "too-big": b"#" * (1 << 20) + b"\ndirect_lvm: {devices: [/dev/vdb]}\n",
}


@pytest.mark.parametrize("case", list(BROKEN_FILES))
def test_every_config_error_at_boot_holds_the_runtime_back(case, tmp_path, monkeypatch):
    """Whatever is wrong with the file (reading, YAML, schema, names), boot raises a
    ConfigError (cloud-init logs it as an ERROR) after masking the runtime."""
    blocked = []
    monkeypatch.setattr(core, "block_runtime_for_this_boot", lambda units: blocked.append(units))
    f = tmp_path / "config.yaml"
    if BROKEN_FILES[case] is None:
        f.mkdir()
    else:
        f.write_bytes(BROKEN_FILES[case])
    with pytest.raises(ConfigError):
        core.boot(core.boot_config({}, str(f)))
    assert blocked == [core.DOCKER_UNITS]


# ---------------------------------------------------------------- the boot path, once a boot


@pytest.fixture
def paths(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("direct_lvm: {devices: [/dev/vdb]}\n")
    return {
        "config_path": str(cfg),
        "record": str(tmp_path / "run/boot.json"),
        "lock": str(tmp_path / "run/boot.lock"),
        "marker": str(tmp_path / "image-setup.json"),
    }


@pytest.fixture
def applied(monkeypatch):
    from direct_lvm.plan import Plan

    calls = []

    def fake_boot(mapping, who="direct-lvm"):
        calls.append((mapping, who))
        return core.ApplyResult(Plan(steps=(), facts=(), notes=()), (), 0.1)

    monkeypatch.setattr(core, "boot", fake_boot)
    return calls


def test_first_run_does_the_work_and_records_who(paths, applied):
    from direct_lvm import bootpath

    assert bootpath.run_boot(bootpath.BY_MODULE, {}, **paths) == 0
    assert applied == [({"devices": ["/dev/vdb"]}, "direct-lvm (cloud-init module)")]
    record = bootpath.read_record(paths["record"])
    assert record["by"] == "cloud-init module" and record["result"] == "ok: nothing changed"
    assert record["boot_id"] == bootpath.boot_id()


def test_second_run_in_the_same_boot_says_who_did_it_and_does_nothing(paths, applied, caplog):
    from direct_lvm import bootpath

    bootpath.run_boot(bootpath.BY_MODULE, {}, **paths)
    with caplog.at_level("INFO", logger="direct_lvm"):
        assert bootpath.run_boot(bootpath.BY_SERVICE, {}, **paths) == 0
    assert len(applied) == 1
    assert "direct-lvm (direct-lvm.service): already done this boot by cloud-init module at " in (
        caplog.text
    )
    assert "nothing to do" in caplog.text


def test_a_record_of_another_boot_is_ignored(paths, applied):
    from direct_lvm import bootpath

    Path(paths["record"]).parent.mkdir(parents=True)
    Path(paths["record"]).write_text(
        json.dumps({"by": "cloud-init module", "boot_id": "an-earlier-boot", "exit_code": 0})
    )
    assert bootpath.read_record(paths["record"]) is None
    assert bootpath.run_boot(bootpath.BY_SERVICE, {}, **paths) == 0
    assert len(applied) == 1


def test_a_failed_first_run_is_recorded_and_not_retried(paths, monkeypatch, caplog):
    from direct_lvm import bootpath

    blocked = []
    monkeypatch.setattr(core, "block_runtime_for_this_boot", lambda units: blocked.append(units))
    Path(paths["config_path"]).write_text("direct_lvm: {devices: [/dev/vdb], data_percent: 150}\n")
    with pytest.raises(ConfigError):
        bootpath.run_boot(bootpath.BY_SERVICE, {}, **paths)
    assert blocked == [core.DOCKER_UNITS]
    record = bootpath.read_record(paths["record"])
    assert record["exit_code"] == 2 and record["result"].startswith("failed: ")
    with caplog.at_level("INFO", logger="direct_lvm"):
        assert bootpath.run_boot(bootpath.BY_MODULE, {}, **paths) == 2
    assert "already done this boot by direct-lvm.service" in caplog.text
    assert blocked == [core.DOCKER_UNITS]  # not tried (nor blocked) twice


def test_no_config_in_a_set_up_image_is_a_warning_naming_where_it_looked(paths, applied, caplog):
    from direct_lvm import bootpath

    Path(paths["config_path"]).unlink()
    Path(paths["marker"]).write_text("{}\n")
    with caplog.at_level("DEBUG", logger="direct_lvm"):
        assert bootpath.run_boot(bootpath.BY_MODULE, {"users": []}, **paths) == 0
    (rec,) = [r for r in caplog.records if r.name == "direct_lvm"]
    assert rec.levelname == "WARNING"
    msg = rec.getMessage()
    assert msg.startswith("direct-lvm (cloud-init module): no config: ")
    assert f"the direct_lvm key of the cloud-config and {paths['config_path']}" in msg
    assert applied == [] and bootpath.read_record(paths["record"]) is None


def test_no_config_without_the_marker_stays_a_debug_line(paths, applied, caplog):
    from direct_lvm import bootpath

    Path(paths["config_path"]).unlink()
    with caplog.at_level("DEBUG", logger="direct_lvm"):
        assert bootpath.run_boot(bootpath.BY_SERVICE, {}, **paths) == 0
    (rec,) = [r for r in caplog.records if r.name == "direct_lvm"]
    assert rec.levelname == "DEBUG" and "direct-lvm (direct-lvm.service)" in rec.getMessage()


def test_before_work_runs_only_for_the_run_that_does_the_work(paths, applied):
    from direct_lvm import bootpath

    settled = []
    kw = dict(paths, before_work=lambda: settled.append(1))
    assert bootpath.run_boot(bootpath.BY_SERVICE, {}, **kw) == 0
    assert bootpath.run_boot(bootpath.BY_SERVICE, {}, **kw) == 0  # already done: no wait
    assert settled == [1] and len(applied) == 1


def test_write_file_replaces_atomically_without_tempfile(tmp_path, monkeypatch):
    """core.write_file's own temporary name: O_EXCL, so a name already taken (here the
    first candidate, the clock held still) is skipped, never reused; nothing is left."""
    import os

    target = tmp_path / "d" / "f.json"
    monkeypatch.setattr(core.time, "monotonic_ns", lambda: 7)
    taken = tmp_path / "d" / f".f.json.{os.getpid()}.7.0"
    taken.parent.mkdir()
    taken.write_text("someone else's")
    core.write_file(str(target), "one\n")
    core.write_file(str(target), "two\n", mode=0o600)
    assert target.read_text() == "two\n" and (target.stat().st_mode & 0o777) == 0o600
    assert taken.read_text() == "someone else's"  # not reused, not removed
    assert sorted(p.name for p in target.parent.iterdir()) == [taken.name, "f.json"]
