"""Where the cloud-init module finds its config: the key, else the write_files file."""

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
        t = threading.Thread(target=lambda: core.exclusive(lock).__enter__() or entered.set())
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
