from pathlib import Path

import pytest
import yaml

from direct_lvm import envs, spec
from direct_lvm.cli import main
from direct_lvm.errors import ConfigError

ENVS = Path(__file__).resolve().parents[2] / "environments"
SHIPPED = sorted(p.stem for p in ENVS.glob("*.yaml"))


def test_the_required_layouts_are_shipped():
    assert {"dev", "prod-nvme"} <= set(SHIPPED)
    prod = envs.load_env(ENVS, "prod-nvme").spec
    assert all(d.startswith("/dev/disk/by-id/nvme-") for d in prod.devices)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_environment_renders_and_round_trips(name, tmp_path):
    env = envs.load_env(ENVS, name)
    files = envs.artifacts(env)
    user_data = files["user-data.yaml"]
    assert user_data.startswith("#cloud-config\n")
    doc = yaml.safe_load(user_data)
    assert set(doc) == {"direct_lvm"}
    assert spec.from_mapping(doc["direct_lvm"]) == env.spec
    if env.spec.runtime is spec.Runtime.DOCKER_OVERLAY2:  # a plain LV: mount unit, no pool
        assert "etc/systemd/system/var-lib-docker.mount" in files
    else:
        assert f"etc/lvm/profile/{env.spec.profile_name}.profile" in files
    assert main(["render", "--env", name, "--envs-dir", str(ENVS), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "user-data.yaml").read_text() == user_data


def test_hostile_description_stays_a_comment(tmp_path):
    (tmp_path / "evil.yaml").write_text(
        'description: "x\\nruncmd: [reboot]\\n"\ndirect_lvm: {devices: [/dev/vdb]}\n'
    )
    doc = yaml.safe_load(envs.artifacts(envs.load_env(tmp_path, "evil"))["user-data.yaml"])
    assert set(doc) == {"direct_lvm"}


@pytest.mark.parametrize(
    ("text", "needle"),
    [("direct_lvm: {devices: [/dev/vdb]}\nextra: 1\n", "unknown key(s) extra"),
     ("description: no pool\n", "expected a mapping with a direct_lvm key"),
     ("direct_lvm: {devices: [/dev/vdb], zero: maybe}\n", "direct_lvm.zero")],
)  # fmt: skip
def test_env_errors_share_the_config_validation(text, needle, tmp_path):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError) as e:
        envs.load_env(tmp_path, "bad")
    assert needle in str(e.value)
    assert main(["render", "--env", "bad", "--envs-dir", str(tmp_path),
                 "--out", str(tmp_path / "o")]) == 2  # fmt: skip


def test_unknown_env_lists_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match="no environment 'qa'") as e:
        envs.load_env(ENVS, "qa")
    assert "dev" in str(e.value)


@pytest.mark.parametrize("name", SHIPPED)
def test_file_carrier_round_trips(name):
    env = envs.load_env(ENVS, name)
    doc = yaml.safe_load(envs.user_data(env, envs.Carrier.FILE))
    assert set(doc) == {"write_files"}
    (entry,) = doc["write_files"]
    assert entry["path"] == "/etc/direct-lvm/config.yaml"
    assert spec.from_mapping(spec.parse_text(entry["content"])) == env.spec


@pytest.mark.parametrize("text", ["a\nb\n", "  leading\n", "x: 'q'\n#c\n", "no newline", "t\tab\n"])
def test_yaml_block_round_trips(text):
    from direct_lvm.render import yaml_block

    doc = f"outer:\n  - inner: {yaml_block(text, 4)}\n"
    assert yaml.safe_load(doc) == {"outer": [{"inner": text}]}
