import jinja2
import pytest
from obs import state

from direct_lvm import core, render, spec
from direct_lvm.render import lvm_int, lvm_str, systemd_arg, systemd_verbatim, yaml_value
from direct_lvm.runtimes._docker import strip_storage_flags
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
    text = f["/etc/systemd/system/docker.service.d/direct-lvm.conf"]
    lines = text.splitlines()
    assert "ExecStart=" in lines
    exec_line = [ln for ln in lines if ln.startswith("ExecStart=/")]
    assert exec_line == [
        "ExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS --storage-driver=devicemapper "
        "--storage-opt=dm.thinpooldev=/dev/mapper/vg--a-tp "
        "--storage-opt=dm.use_deferred_removal=true --storage-opt=dm.use_deferred_deletion=true"
    ]
    assert "After=lvm2-monitor.service" in lines


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
