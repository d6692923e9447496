"""The bad-input suite, config half: each case goes through the real CLI entry
(`direct-lvm apply CONFIG`) and must exit 2 with a message that names the offending
value and a "fix:". Nothing is probed or run (unit tests fail on any command). The
device half, which needs real disks, runs in a guest: tests/guest/in_guest/test_devices.py.
"""

import os

import pytest

from direct_lvm import cli, configfile

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
    "runtime-unknown": (D + "runtime: rkt\n", 'runtime: "rkt"'),
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
    # lvm2's naming rules (lib/misc/lvm-string.c): _validate_name for VG and LV names,
    # apply_lvname_restrictions for LV names, and the device-mapper name's length
    "vg-dotdot": (D + "vg: '..'\n", "is '.' or '..'"),
    "vg-128-chars": (D + f"vg: {'v' * 128}\n", "is 128 characters long"),
    "vg-non-ascii": (D + "vg: dockér\n", "character(s) LVM refuses: 'é'"),
    "pool-leading-dash-with-position": (D + "pool: -tp\n", "starts with '-'"),
    "pool-snapshot-prefix": (D + "pool: snapshot1\n", "starts with 'snapshot'"),
    "pool-pvmove": (D + "pool: pvmove\n", "starts with 'pvmove'"),
    "pool-tmeta-substring": (D + "pool: my_tmeta_pool\n", "contains '_tmeta'"),
    "pool-pmspare-substring": (D + "pool: lvol0_pmspare\n", "contains '_pmspare'"),
    "pool-vorigin-substring": (D + "pool: a_vorigin\n", "contains '_vorigin'"),
    "pool-cdata-substring": (D + "pool: x_cdata\n", "contains '_cdata'"),
    "pool-too-long-for-tdata": (D + f"pool: {'p' * 122}\n", "_tdata and _tmeta"),
    "dm-name-too-long": (D + f"vg: {'a-' * 30}\npool: {'b-' * 30}\n", "device-mapper name"),
    "overlay2-lv-rimage": (
        D + "runtime: docker-overlay2\noverlay2: {lv: data_rimage_0}\n",
        'direct_lvm.overlay2.lv: "data_rimage_0" breaks lvm2\'s naming rules: it contains',
    ),
    "overlay2-lv-snapshot": (
        D + "runtime: docker-overlay2\noverlay2: {lv: snapshot}\n",
        'overlay2.lv: "snapshot"',
    ),
    "overlay2-lv-slash": (D + "runtime: docker-overlay2\noverlay2: {lv: a/b}\n", "'/'"),
    # duplicate mapping keys (PyYAML would keep the last one silently)
    "duplicate-key": (D + "vg: a\nvg: b\n", "duplicate key 'vg' (first at line 2) at line 3"),
    "duplicate-nested-key": (D + "autoextend:\n  percent: 20\n  percent: 30\n", "'percent'"),
    "duplicate-direct_lvm-key": (
        "direct_lvm: {devices: [/dev/vdb]}\ndirect_lvm: {devices: [/dev/vdc]}\n",
        "duplicate key 'direct_lvm'",
    ),
    # non-finite numbers, anywhere numeric
    "wait_timeout-nan": (D + "wait_timeout: .nan\n", "wait_timeout: .nan is not a finite"),
    "wait_timeout-inf": (D + "wait_timeout: .inf\n", "wait_timeout: .inf is not a finite"),
    "data_percent-minus-inf": (D + "data_percent: -.inf\n", "data_percent: -.inf"),
    "threshold-nan": (D + "autoextend: {threshold: .NaN}\n", "autoextend.threshold: .nan"),
    "nan-in-a-selector": ("devices: [{serial: a, size: .nan}]\n", "devices[0].size: .nan"),
    # line and column of the field
    "position-of-a-bad-value": (D + "zero: 'no'\n", "(line 2, column 7)"),
    "position-in-a-cloud-config": (
        "#cloud-config\ndirect_lvm:\n  devices: [/dev/vdb]\n  data_percent: 200\n",
        "(line 4, column 17)",
    ),
    "position-of-an-unknown-key": (D + "colour: red\n", "unknown key(s) 'colour' (line 2"),
    # hints that help
    "type-error-names-type-and-example": (
        D + "data_percent: lots\n",
        "fix: write a whole number, e.g. `data_percent: 80`",
    ),
    "size-with-KB": (
        D + "chunk_size: 512KB\n",
        "fix: sizes are like 512K, 64M, 1G (K/M/G/T, powers of 1024)",
    ),
    "metadata-size-with-KB": (D + "metadata_size: 64MB\n", "write 'auto' or a size"),
    "missing-devices-example": ("vg: docker\n", "e.g. `devices: [/dev/vdb]`"),
    "nested-too-deep": ("devices: " + "[" * 20000 + "]" * 20000 + "\n", "nested too deeply"),
    "nul-byte": ("devices: [/dev/vdb]\n\x00\n", "not valid YAML at line 2, column 1"),
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


def _undecodable(tmp):
    p = tmp / "config.yaml"
    p.write_bytes(b"devices: [/dev/vdb]\nvg: \xff\xfe\x00docker\n")
    return p


def _directory(tmp):
    return tmp


def _under_a_file(tmp):
    (tmp / "file").write_text("devices: [/dev/vdb]\n")
    return tmp / "file" / "config.yaml"


def _missing(tmp):
    return tmp / "absent.yaml"


def _over_the_cap(tmp):
    p = tmp / "big.yaml"
    with p.open("wb") as f:  # sparse: the size is checked before anything is read
        f.truncate(configfile.MAX_CONFIG_BYTES + 1)
    return p


def _gzip(tmp):
    p = tmp / "config.yaml.gz"
    p.write_bytes(bytes.fromhex("1f8b0800000000000003") + b"\x8b\xe2\x02\x00")
    return p


# case id -> (make the path, what the message must name); {path} is the path made
FILE_CASES = {
    "undecodable-bytes": (_undecodable, "{path}: byte 0xff at line 2, column 5 is not UTF-8"),
    "gzip-file": (_gzip, "byte 0x8b at line 1, column 2 is not UTF-8"),
    "a-directory": (_directory, "cannot read config '{path}': it is a directory"),
    "path-under-a-file": (_under_a_file, "cannot read config '{path}': Not a directory"),
    "missing-file": (_missing, "cannot read config '{path}': No such file"),
    "over-the-size-cap": (_over_the_cap, "config '{path}' is 1048577 bytes, over the 1 MiB"),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_bad_file_exits_2_naming_the_path_and_the_fix(case, tmp_path, capsys):
    make, needle = FILE_CASES[case]
    path = make(tmp_path)
    rc = cli.main(["apply", str(path)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert needle.format(path=path) in err, err
    assert "fix:" in err, err
    assert err.startswith("direct-lvm: error: "), err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file; see the fake below")
def test_unreadable_file_exits_2(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text("devices: [/dev/vdb]\n")
    path.chmod(0)
    rc = cli.main(["apply", str(path)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"cannot read config '{path}': Permission denied" in err, err
    assert "fix: run as root, or make it readable" in err, err


def test_unreadable_file_exits_2_faked(tmp_path, capsys, monkeypatch):
    """The same path as above, as root: open() is made to fail the way it does for a
    non-root user on a mode-000 file."""
    path = tmp_path / "config.yaml"
    path.write_text("devices: [/dev/vdb]\n")
    real_open = os.open

    def deny(name, *args, **kwargs):
        if str(name) == str(path):
            raise PermissionError(13, "Permission denied", str(name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(configfile.os, "open", deny)
    rc = cli.main(["apply", str(path)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"cannot read config '{path}': Permission denied" in err, err
    assert f"fix: run as root, or make it readable: chmod a+r {path}" in err, err


def test_a_pipe_is_read_up_to_the_cap_only(tmp_path, capsys):
    """A non-regular file has no size to check first: at most cap + 1 bytes are read."""
    import threading

    r, w = os.pipe()

    def feed():
        chunk = b"#" * 65536
        try:
            for _ in range(configfile.MAX_CONFIG_BYTES // len(chunk) + 4):
                os.write(w, chunk)
        except BrokenPipeError:
            pass  # the reader stopped at the cap and closed its end
        finally:
            os.close(w)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        rc = cli.main(["apply", f"/dev/fd/{r}"])
    finally:
        os.close(r)
        writer.join(10)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "is more than 1048576 bytes, over the 1 MiB limit" in err, err
    assert "fix:" in err, err
