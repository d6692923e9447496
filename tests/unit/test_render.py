import jinja2
import pytest
from obs import state

from direct_lvm import core, render, spec
from direct_lvm.render import (
    env_words,
    lvm_int,
    lvm_str,
    systemd_arg,
    systemd_verbatim,
    yaml_value,
)
from direct_lvm.runtimes._docker import DOCKER_DROPIN, DOCKER_ENV, strip_storage_flags
from direct_lvm.runtimes._systemd import ServiceState

EXEC = "/usr/sbin/dockerd -H fd:// $DOCKER_OPTS"


def files(**kw):
    s = spec.from_mapping({"devices": ["/dev/vdb"], **kw})
    d = ServiceState("docker.service", True, (20, 10), "", False, (), EXEC)
    return s, core.desired_files(s, state(d))


def test_profile_matches_the_hand_procedure():
    _, f = files()
    text = f["/etc/lvm/profile/docker-thinpool.profile"]
    assert "activation {\n" in text
    assert "\tthin_pool_autoextend_threshold = 80\n" in text
    assert "\tthin_pool_autoextend_percent = 20\n" in text
    assert text.endswith("}\n")


def test_dropin_resets_and_extends_the_vendor_execstart():
    s, f = files(vg="vg-a", pool="tp")
    text = f[DOCKER_DROPIN]
    lines = text.splitlines()
    assert "ExecStart=" in lines
    exec_line = [ln for ln in lines if ln.startswith("ExecStart=/")]
    # the vendor's ExecStart, then the variable (unbraced: split into words, or nothing)
    assert exec_line == [
        "ExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS $DIRECT_LVM_DOCKER_STORAGE"
    ]
    assert "EnvironmentFile=-/etc/direct-lvm/docker-storage.env" in lines  # "-": may be absent
    assert "After=lvm2-monitor.service" in lines
    # static: the same drop-in for any pool, so a baked one needs no daemon-reload
    assert files(vg="other", pool="p")[1][DOCKER_DROPIN] == text
    env = f[DOCKER_ENV].splitlines()
    assert env[0].startswith("# Written by direct-lvm for the thin pool vg-a/tp;")
    assert env[-1] == (
        'DIRECT_LVM_DOCKER_STORAGE="--storage-driver=devicemapper '
        "--storage-opt=dm.thinpooldev=/dev/mapper/vg--a-tp "
        '--storage-opt=dm.use_deferred_removal=true --storage-opt=dm.use_deferred_deletion=true"'
    )


@pytest.mark.parametrize("bad", ["a b", 'q"', "back\\slash", "$HOME", "", "x\n"])
def test_env_words_refuses_what_systemd_would_split_or_keep_quoted(bad):
    with pytest.raises(ValueError, match="not a plain word"):
        env_words(["--ok", bad])
    assert env_words(["--a=b", "c/d"]) == '"--a=b c/d"'


def test_vendor_storage_flags_are_replaced_not_duplicated():
    assert (
        strip_storage_flags(
            "/usr/bin/dockerd -H fd:// --storage-driver overlay2 --storage-opt=a=b --x"
        )
        == "/usr/bin/dockerd -H fd:// --x"
    )


@pytest.mark.parametrize(
    ("arg", "out"),
    [("plain-arg", "plain-arg"), ("50%", '"50%%"'), ("$HOME", '"$$HOME"'),
     ("a b", '"a b"'), ('say "hi"', '"say \\"hi\\""'), ("back\\slash", '"back\\\\slash"')],
)  # fmt: skip
def test_systemd_arg_escaping(arg, out):
    assert systemd_arg(arg) == out


@pytest.mark.parametrize("bad", ["a\nExecStartPre=/bin/evil", "x\r", "nul\0"])
def test_line_breaks_never_reach_a_unit_or_lvm_config(bad):
    for f in (systemd_arg, systemd_verbatim, lvm_str):
        with pytest.raises(ValueError, match="line break"):
            f(bad)


def test_lvm_int_rejects_non_integers():
    assert lvm_int(80) == "80"
    for bad in ("80", 8.5, True):
        with pytest.raises(ValueError):
            lvm_int(bad)


def test_lvm_str_quotes():
    assert lvm_str('a"b') == '"a\\"b"'


def test_yaml_value_escapes_for_yaml():
    import yaml

    for v in ["plain", "a: b", "- x", "#c", "multi\nline", "@at", "yes", "'q'"]:
        assert yaml.safe_load(f"k: {yaml_value(v)}\n") == {"k": v}


def test_strict_undefined():
    with pytest.raises(jinja2.UndefinedError):
        render.render("lvm-profile.profile.j2", vg="docker", pool="thinpool", threshold=80)


def test_templates_keep_trailing_newline():
    _, f = files()
    assert all(t.endswith("\n") for t in f.values())
