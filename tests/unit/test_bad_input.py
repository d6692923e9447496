"""The bad-input suite, config half: each case goes through the real CLI entry
(`direct-lvm apply CONFIG`) and must exit 2 with a message that names the offending
value and a "fix:". Nothing is probed or run (unit tests fail on any command). The
device half, which needs real disks, runs in a guest: tests/guest/in_guest/test_devices.py.
"""

import pytest

from direct_lvm import cli

D = "devices: [/dev/vdb]\n"

# case id -> (config text, what the message must name)
CASES = {
    # malformed YAML and the wrong shape
    "yaml-unclosed-bracket": ("devices: [/dev/vdb\n", "not valid YAML at line 2"),
    "yaml-tab-indent": ("direct_lvm:\n\tdevices: [/dev/vdb]\n", "not valid YAML at line 2"),
    "yaml-bad-colon": ("devices: [/dev/vdb]\nvg: a: b\n", "not valid YAML at line 2"),
    "top-level-list": ("- /dev/vdb\n", "expected a mapping, got list"),
    "direct_lvm-a-string": ("direct_lvm: /dev/vdb\n", 'must be a mapping, got "/dev/vdb"'),
    "empty-file": ("", "the file is empty"),
    # unknown keys
    "unknown-key": (D + "colour: red\n", "unknown key(s) 'colour'"),
    "unknown-nested-key": (D + "autoextend: {treshold: 80}\n", "unknown key(s) 'treshold'"),
    "unknown-selector-key": ("devices: [{serail: abc}]\n", "unknown key(s) 'serail'"),
    "missing-devices": ("vg: docker\n", "'devices' is a required property"),
    # wrong types
    "devices-a-string": ("devices: /dev/vdb\n", 'direct_lvm.devices: "/dev/vdb"'),
    "devices-empty": ("devices: []\n", "direct_lvm.devices: []"),
    "device-an-integer": ("devices: [42]\n", "direct_lvm.devices[0]: 42 is neither"),
    "data_percent-a-string": (D + "data_percent: lots\n", 'data_percent: "lots"'),
    "zero-a-string": (D + "zero: 'no'\n", 'zero: "no"'),
    "wait_timeout-a-string": (D + "wait_timeout: soon\n", 'wait_timeout: "soon"'),
    "runtime-unknown": (D + "runtime: podman\n", 'runtime: "podman"'),
    # percentages
    "data_percent-negative": (D + "data_percent: -5\n", "data_percent: -5"),
    "data_percent-0": (D + "data_percent: 0\n", "data_percent: 0"),
    "data_percent-101": (D + "data_percent: 101\n", "data_percent: 101"),
    "threshold-over-100": (D + "autoextend: {threshold: 120}\n", "threshold: 120"),
    "autoextend-percent-over-100": (D + "autoextend: {percent: 150}\n", "percent: 150"),
    "autoextend-percent-negative": (D + "autoextend: {percent: -20}\n", "percent: -20"),
    # chunk size: a multiple of 64K between 64K and 1G
    "chunk-32K-below-64K": (D + "chunk_size: 32K\n", "chunk_size: '32K' must be between"),
    "chunk-100K-not-multiple": (D + "chunk_size: 100K\n", "'100K' must be a multiple of 64K"),
    "chunk-1000K-not-multiple": (D + "chunk_size: 1000K\n", "'1000K' must be a multiple"),
    "chunk-2G-above-1G": (D + "chunk_size: 2G\n", "chunk_size: '2G' must be between"),
    "chunk-not-a-size": (D + "chunk_size: big\n", 'chunk_size: "big"'),
    "metadata-below-2M": (D + "metadata_size: 1M\n", "metadata_size: '1M' is below"),
    "metadata-above-max": (D + "metadata_size: 20G\n", "metadata_size: '20G' is above"),
    # device strings: shell metacharacters, spaces, newlines, relative paths
    "device-semicolon": ("devices: ['/dev/vdb;reboot']\n", '"/dev/vdb;reboot"'),
    "device-command-substitution": ("devices: ['/dev/$(id)']\n", '"/dev/$(id)"'),
    "device-backticks": ("devices: ['/dev/`id`']\n", '"/dev/`id`"'),
    "device-pipe": ("devices: ['/dev/vdb|cat']\n", '"/dev/vdb|cat"'),
    "device-quote": ('devices: ["/dev/vd\'b"]\n', '"/dev/vd\'b"'),
    "device-space": ("devices: ['/dev/vd b']\n", '"/dev/vd b"'),
    "device-newline": ('devices: ["/dev/vdb\\nrm"]\n', '"/dev/vdb\\nrm"'),
    "device-relative": ("devices: [vdb]\n", 'direct_lvm.devices[0]: "vdb"'),
    "device-dot-relative": ("devices: [./dev/vdb]\n", '"./dev/vdb"'),
    "device-outside-dev": ("devices: [/tmp/disk.img]\n", '"/tmp/disk.img"'),
    "device-dotdot": ("devices: [/dev/disk/../../etc/passwd]\n", "'/dev/disk/../../etc/passwd'"),
    "device-duplicate": ("devices: [/dev/vdb, /dev/vdb]\n", "non-unique"),
    # selectors
    "selector-empty": ("devices: [{}]\n", "direct_lvm.devices[0]: {}"),
    "selector-first_empty-false": ("devices: [{first_empty: false}]\n", "first_empty: false"),
    "selector-serial-shell": ("devices: [{serial: 'a;reboot'}]\n", 'serial: "a;reboot"'),
    "selector-id-space": ("devices: [{id: 'virtio-a b'}]\n", 'id: "virtio-a b"'),
    "selector-size-not-a-size": ("devices: [{size: huge}]\n", 'size: "huge"'),
    "selector-min-above-max": ("devices: [{min_size: 2G, max_size: 1G}]\n", "min_size '2G'"),
    "selector-size-and-range": ("devices: [{size: 2G, min_size: 1G}]\n", "size '2G' is given"),
    "selector-duplicate": ("devices: [{serial: a}, {serial: a}]\n", "non-unique"),
    # names
    "vg-leading-dash": (D + "vg: -docker\n", 'vg: "-docker"'),
    "vg-slash": (D + "vg: a/b\n", 'vg: "a/b"'),
    "pool-dot": (D + "pool: '.'\n", 'pool: "."'),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_naming_the_value_and_the_fix(case, tmp_path, capsys):
    text, needle = CASES[case]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    rc = cli.main(["apply", str(path)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert needle in err, err
    assert "fix:" in err, err
    assert err.startswith("direct-lvm: error: "), err


def test_the_suite_is_at_least_30_cases():
    assert len(CASES) >= 30
