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
    files = envs.artifacts(env)  # the default carrier: file
    user_data = files["user-data.yaml"]
    assert user_data.startswith("#cloud-config\n")
    doc = yaml.safe_load(user_data)
    assert set(doc) == {"merge_how", "write_files"}
    (entry,) = doc["write_files"]
    assert spec.from_mapping(spec.parse_text(entry["content"])) == env.spec
    key = yaml.safe_load(envs.artifacts(env, envs.Carrier.KEY)["user-data.yaml"])
    assert set(key) == {"direct_lvm"}
    assert spec.from_mapping(key["direct_lvm"]) == env.spec
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
    env = envs.load_env(tmp_path, "evil")
    for carrier, keys in ((envs.Carrier.FILE, {"merge_how", "write_files"}),
                          (envs.Carrier.KEY, {"direct_lvm"})):  # fmt: skip
        doc = yaml.safe_load(envs.artifacts(env, carrier)["user-data.yaml"])
        assert set(doc) == keys


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
    assert set(doc) == {"merge_how", "write_files"}
    assert doc["merge_how"] == "list(append)+dict(recurse_array)+str()"
    (entry,) = doc["write_files"]
    assert entry["path"] == "/etc/direct-lvm/config.yaml"
    assert spec.from_mapping(spec.parse_text(entry["content"])) == env.spec


@pytest.mark.parametrize("text", ["a\nb\n", "  leading\n", "x: 'q'\n#c\n", "no newline", "t\tab\n"])
def test_yaml_block_round_trips(text):
    from direct_lvm.render import yaml_block

    doc = f"outer:\n  - inner: {yaml_block(text, 4)}\n"
    assert yaml.safe_load(doc) == {"outer": [{"inner": text}]}


def merge(buf: dict, part: dict) -> dict:
    """cloud-init's merge of one cloud-config part into the parts before it, for the
    mergers a part can name (dict replace/no_replace + recurse_array, list append or
    replace): the part's own merge_how decides, DEF_MERGERS when it has none. A model of
    cloud-init's documented rules; the guest test proves the real thing."""
    how = part.get("merge_how", "dict(replace)+list()+str()")
    append = "list(append)" in how
    replace = "dict(replace)" in how
    recurse = "recurse_array" in how or "recurse_list" in how
    out = dict(buf)
    for k, v in part.items():
        if k not in out or replace:
            out[k] = v
        elif isinstance(v, list) and recurse:
            out[k] = out[k] + v if append else v
    return out


def test_rendered_part_appends_its_write_files_after_another_part():
    env = envs.load_env(ENVS, "dev")
    ours = yaml.safe_load(envs.user_data(env))
    other = {"write_files": [{"path": "/etc/other.conf", "content": "x\n"}]}
    merged = merge(merge({}, other), ours)
    assert [f["path"] for f in merged["write_files"]] == [
        "/etc/other.conf",
        "/etc/direct-lvm/config.yaml",
    ]


def test_render_defaults_to_the_file_carrier(tmp_path):
    assert main(["render", "--env", "dev", "--envs-dir", str(ENVS), "--out", str(tmp_path)]) == 0
    doc = yaml.safe_load((tmp_path / "user-data.yaml").read_text())
    assert doc["write_files"][0]["path"] == "/etc/direct-lvm/config.yaml"
    assert main(["render", "--env", "dev", "--envs-dir", str(ENVS), "--out",
                 str(tmp_path / "k"), "--carrier", "key"]) == 0  # fmt: skip
    assert "direct_lvm" in yaml.safe_load((tmp_path / "k/user-data.yaml").read_text())
