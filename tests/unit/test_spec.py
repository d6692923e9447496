import json
from pathlib import Path

import pytest

from direct_lvm import spec
from direct_lvm.errors import ConfigError


def load(text, tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return spec.load_file(p)


def test_defaults_from_minimal_cloud_config(tmp_path):
    s = load("#cloud-config\ndirect_lvm:\n  devices: [/dev/vdb]\n", tmp_path)
    assert s.runtime is spec.Runtime.DOCKER_DEVICEMAPPER
    assert (s.vg, s.pool, s.profile_name, s.pool_path) == (
        "docker",
        "thinpool",
        "docker-thinpool",
        "/dev/mapper/docker-thinpool",
    )
    assert s.chunk_size == 512 * 1024 and s.zero is False and s.metadata_size is None
    assert (s.autoextend.threshold, s.autoextend.percent) == (80, 20)
    assert s.data_percent == 80 and s.wipe_signatures is False


def test_bare_mapping_is_accepted_and_other_cloud_config_keys_ignored(tmp_path):
    a = load("devices: [/dev/vdb]\nvg: data\n", tmp_path)
    b = load("packages: [htop]\ndirect_lvm: {devices: [/dev/vdb], vg: data}\n", tmp_path)
    assert a == b


def test_to_mapping_round_trips(tmp_path):
    s = load("direct_lvm: {devices: [/dev/vdb], chunk_size: 1M, metadata_size: 1G}\n", tmp_path)
    assert spec.from_mapping(spec.to_mapping(s)) == s


BAD = {
    "unknown key": ("devices: [/dev/vdb]\ncolour: red\n", "unknown key(s) 'colour'"),
    "unknown nested key": ("devices: [/dev/vdb]\nautoextend: {treshold: 80}\n", "'treshold'"),
    "missing devices": ("vg: docker\n", "'devices' is a required property"),
    "empty devices": ("devices: []\n", "direct_lvm.devices: []"),
    "devices not a list": ("devices: /dev/vdb\n", 'direct_lvm.devices: "/dev/vdb"'),
    "relative device": ("devices: [vdb]\n", 'direct_lvm.devices[0]: "vdb"'),
    "device with ;": ("devices: ['/dev/vdb;reboot']\n", "shell characters"),
    "device with space": ("devices: ['/dev/vd b']\n", "spaces"),
    "device with newline": ('devices: ["/dev/vdb\\nx"]\n', "direct_lvm.devices[0]"),
    "device with $()": ("devices: ['/dev/$(id)']\n", "direct_lvm.devices[0]"),
    "device not under /dev": ("devices: [/tmp/disk]\n", "direct_lvm.devices[0]"),
    "device with ..": ("devices: [/dev/disk/../../etc/passwd]\n", "not a normalized path"),
    "duplicate device": ("devices: [/dev/vdb, /dev/vdb]\n", "non-unique"),
    "bad runtime": ("devices: [/dev/vdb]\nruntime: rkt\n", "use one of: docker-devicemapper"),
    "data_percent 0": ("devices: [/dev/vdb]\ndata_percent: 0\n", "less than the minimum of 1"),
    "data_percent 101": ("devices: [/dev/vdb]\ndata_percent: 101\n", "maximum of 100"),
    "data_percent negative": ("devices: [/dev/vdb]\ndata_percent: -5\n", "data_percent: -5"),
    "data_percent string": ("devices: [/dev/vdb]\ndata_percent: lots\n", "not of type 'integer'"),
    "threshold 120": ("devices: [/dev/vdb]\nautoextend: {threshold: 120}\n", "threshold: 120"),
    "threshold 10": ("devices: [/dev/vdb]\nautoextend: {threshold: 10}\n", "minimum of 50"),
    "percent 0": ("devices: [/dev/vdb]\nautoextend: {percent: 0}\n", "percent: 0"),
    "chunk not size": ("devices: [/dev/vdb]\nchunk_size: big\n", 'chunk_size: "big"'),
    "chunk 32K": ("devices: [/dev/vdb]\nchunk_size: 32K\n", "must be between 64K and 1G"),
    "chunk 100K": ("devices: [/dev/vdb]\nchunk_size: 100K\n", "must be a multiple of 64K"),
    "chunk 2G": ("devices: [/dev/vdb]\nchunk_size: 2G\n", "must be between 64K and 1G"),
    "metadata 1M": ("devices: [/dev/vdb]\nmetadata_size: 1M\n", "below LVM's minimum of 2M"),
    "metadata 20G": ("devices: [/dev/vdb]\nmetadata_size: 20G\n", "above LVM's maximum"),
    "zero string": ("devices: [/dev/vdb]\nzero: 'no'\n", "not of type 'boolean'"),
    "vg leading dash": ("devices: [/dev/vdb]\nvg: -docker\n", "starts with '-'"),
    "vg with slash": ("devices: [/dev/vdb]\nvg: a/b\n", "direct_lvm.vg"),
    "pool dot": ("devices: [/dev/vdb]\npool: '.'\n", "direct_lvm.pool"),
    "wait negative": ("devices: [/dev/vdb]\nwait_timeout: -1\n", "wait_timeout: -1"),
    "malformed yaml": ("devices: [/dev/vdb\n", "not valid YAML at line"),
    "list at top": ("- /dev/vdb\n", "expected a mapping, got list"),
    "direct_lvm not a mapping": ("direct_lvm: /dev/vdb\n", "must be a mapping"),
    "empty file": ("", "the file is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_names_the_value_and_the_fix(case, tmp_path):
    text, needle = BAD[case]
    with pytest.raises(ConfigError) as exc:
        load(text, tmp_path)
    message = str(exc.value)
    assert needle in message
    assert "fix:" in message
    assert exc.value.exit_code == 2


def test_all_schema_errors_reported_at_once(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load("devices: [/dev/vdb]\ndata_percent: 200\nzero: 3\n", tmp_path)
    assert "data_percent" in str(exc.value) and "zero" in str(exc.value)


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        spec.load_file(tmp_path / "missing.yaml")


def test_every_field_is_documented():
    props = spec.schema()["properties"]
    for name, node in props.items():
        assert node.get("description"), name
    for name, node in props["autoextend"]["properties"].items():
        assert node.get("description"), name


# ---- the parse kept in the render record (spec.read_mapping)


def _record_entries(path):
    return json.loads(Path(path).read_text())["entries"]


def test_a_config_texts_parse_is_kept_and_validated_again_on_every_run(tmp_path):
    from direct_lvm import render

    record = tmp_path / "record.json"
    config = tmp_path / "c.yaml"
    config.write_text("direct_lvm:\n  devices: [/dev/vdb]\n  vg: data  # a comment\n")
    render.remember(str(record))
    first = spec.load_file(config)
    key = spec._parse_key(config.read_text())
    assert json.loads(_record_entries(record)[key]) == {"devices": ["/dev/vdb"], "vg": "data"}
    render.remember(str(record))  # a later run
    assert spec.load_file(config) == first
    # validation still runs on what the record gives: an entry that does not validate is
    # not trusted; the text is parsed again and YAML's answer wins
    render.keep(key, json.dumps({"devices": "not a list"}))
    assert spec.load_file(config) == first
    # a changed text is another key: parsed, and its own error names the line
    config.write_text("direct_lvm:\n  devices: /dev/vdb\n")
    with pytest.raises(ConfigError, match="line 2"):
        spec.load_file(config)


@pytest.mark.parametrize(
    "text",
    [
        "direct_lvm:\n  devices: [/dev/vdb]\n  1: x\n",  # an int key: JSON would make it "1"
        "direct_lvm:\n  devices: [/dev/vdb]\n  note: 2024-01-01\n",  # a date
        "direct_lvm:\n  devices: [/dev/vdb]\n  data_percent: .nan\n",  # not finite
        "direct_lvm:\n  devices: /dev/vdb\n",  # plain, but not valid: its error keeps a line
    ],
)
def test_only_a_valid_configs_json_exact_parse_is_kept(tmp_path, text):
    from direct_lvm import render

    record = tmp_path / "record.json"
    config = tmp_path / "c.yaml"
    config.write_text(text)
    render.remember(str(record))
    for _ in range(2):  # each is a bad config, refused as before, every time
        with pytest.raises(ConfigError):
            spec.load_file(config)
    assert not record.exists() or spec._parse_key(text) not in _record_entries(record)


def test_without_a_record_nothing_is_kept(tmp_path):
    from direct_lvm import render

    render.forget()
    config = tmp_path / "c.yaml"
    config.write_text("direct_lvm:\n  devices: [/dev/vdb]\n")
    assert spec.load_file(config).devices == ("/dev/vdb",)
    assert list(tmp_path.iterdir()) == [config]
