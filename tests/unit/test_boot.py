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
    monkeypatch.setattr(core, "block_runtime_for_this_boot", lambda: blocked.append(True))
    f = tmp_path / "config.yaml"
    f.write_text("direct_lvm: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        core.boot_config({}, str(f))
    assert blocked == [True]


def test_boot_with_bad_config_blocks_docker_and_raises(monkeypatch):
    blocked = []
    monkeypatch.setattr(core, "block_runtime_for_this_boot", lambda: blocked.append(True))
    with pytest.raises(ConfigError, match="data_percent"):
        core.boot({"devices": ["/dev/vdb"], "data_percent": 150})
    assert blocked == [True]
