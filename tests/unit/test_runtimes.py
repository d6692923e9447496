"""containerd-devmapper and docker-overlay2: config merge, escaping, version gate, plans."""

from pathlib import Path

import pytest
import tomlkit
from obs import check_runtime, findmnt, make_observed, state

from direct_lvm import OWNER_TAG, core, spec
from direct_lvm._compat import toml_loads
from direct_lvm.errors import ConfigError, RefusedError, VerifyError
from direct_lvm.observed import OURS, RootState, RuntimeState
from direct_lvm.plan import Action, plan
from direct_lvm.probe import LV, PV, VG, LvmState
from direct_lvm.render import toml_str
from direct_lvm.runtimes import _lvroot as lvroot
from direct_lvm.runtimes import containerd_devmapper as containerd
from direct_lvm.runtimes._docker import DOCKER_DROPIN
from direct_lvm.runtimes._systemd import RestartMode, ServiceState
from direct_lvm.runtimes.docker_overlay2 import MOUNT_UNIT, MOUNT_UNIT_PATH

DATA = Path(__file__).parent / "data"
GIB = 1 << 30
EXEC = "/usr/sbin/dockerd -H fd:// $DOCKER_OPTS"
FRAG = containerd.FRAGMENT


def ctd(version=(1, 6), active=False):
    return ServiceState("containerd.service", True, version, "containerd 1.6.20~ds1-1", active)


def docker26(active=False, cmdline=()):
    return ServiceState("docker.service", True, (26, 1), "Docker 26.1.5+dfsg1-9+b9", active,
                        tuple(cmdline), EXEC)  # fmt: skip


def mkspec(**kw):
    return spec.from_mapping({"devices": ["/dev/vdb"], **kw})


# ------------------------------------------------------------------ containerd config


def test_version_parsing_and_config_version():
    assert containerd.parse_version("containerd 1.6.20~ds1-1+deb12u3") == (1, 6)
    assert containerd.parse_version(
        "containerd github.com/containerd/containerd v1.7.24 88bf19b2") == (1, 7)  # fmt: skip
    assert containerd.parse_version("containerd 2.0.2-1") == (2, 0)
    assert containerd.config_version((1, 7)) == 2
    assert containerd.config_version((2, 0)) == 3
    assert containerd.config_version(None) == 2


def test_missing_config_gets_a_minimal_one_with_the_version_of_the_installed_containerd():
    for installed, version in (((1, 6), 2), ((2, 1), 3)):
        text, v = containerd.main_config(None, installed)
        assert v == version
        assert toml_loads(text) == {"version": version, "imports": [FRAG]}


def test_distribution_config_gets_our_import_and_nothing_else_changes():
    orig = (DATA / "containerd-config.toml-bookworm").read_text()
    text, v = containerd.main_config(orig, (1, 6))
    assert v == 2
    assert text.endswith(orig)  # the original text is kept verbatim
    assert toml_loads(text) == {**toml_loads(orig), "imports": [FRAG]}
    assert containerd.main_config(text, (1, 6)) == (text, 2)  # idempotent


def test_existing_multiline_imports_list_is_extended_in_place():
    orig = (
        "version = 2\nimports = [\n"
        '  "/etc/a.toml", # a comment ] with a bracket\n'
        "  '/etc/b].toml',\n]\n"
        '[grpc]\n  address = "x"\n'
    )
    text, _ = containerd.main_config(orig, (1, 7))
    data = toml_loads(text)
    assert data["imports"] == ["/etc/a.toml", "/etc/b].toml", FRAG]
    assert data["grpc"] == {"address": "x"}
    assert text.endswith('[grpc]\n  address = "x"\n')
    if tomlkit.__version__ != "0.6.0":  # 0.6 cannot append to a multi-line array in place
        assert "# a comment ] with a bracket" in text
    back = toml_loads(containerd.remove_import(text, FRAG))
    assert back == {**data, "imports": ["/etc/a.toml", "/etc/b].toml"]}


@pytest.mark.parametrize(("text", "needle"), [
    ('version = 2\n[plugins."io.containerd.snapshotter.v1.devmapper"]\npool_name = "x"\n',
     "configures the devmapper snapshotter itself"),
    ('[plugins.devmapper]\npool_name = "x"\n', "version 1 config"),
    ('version = 2\ndisabled_plugins = ["io.containerd.snapshotter.v1.devmapper"]\n',
     "disabled_plugins"),
    ("version = 2\nimports = [\n", "not valid TOML"),
])  # fmt: skip
def test_configs_we_cannot_join_are_refused(text, needle):
    with pytest.raises(ConfigError, match=needle):
        containerd.main_config(text, (1, 6))


# add_import / remove_import: tomlkit edits, checked on tomlkit 0.6 (bullseye) as on newer
NO_IMPORTS = {
    "empty file": "",
    "only a header": "[plugins]\n",
    "comments everywhere": (
        "# the distribution's config\nversion = 2  # v2\n\n# the plugins\n"
        '[plugins]  # p\n  [plugins."io.containerd.grpc.v1.cri"]\n    x = 1  # x\n'
    ),
    "inline tables": 'version = 2\nx = {a = 1, b = [1, 2], c = {d = "e"}}\n[grpc]\naddress = "x"\n',
}


@pytest.mark.parametrize("orig", NO_IMPORTS.values(), ids=NO_IMPORTS.keys())
def test_add_import_without_imports_puts_the_key_on_top_and_remove_gives_the_text_back(orig):
    text = containerd.add_import(orig, FRAG)
    assert text.endswith(orig)  # the original text is kept verbatim, below our key
    assert text.startswith(f"# imports: direct-lvm added {FRAG} (its devmapper ")
    assert toml_loads(text) == {**toml_loads(orig), "imports": [FRAG]}
    assert containerd.add_import(text, FRAG) == text  # idempotent
    assert containerd.remove_import(text, FRAG) == orig  # byte for byte
    assert containerd.remove_import(orig, FRAG) == orig  # nothing to take out


def test_add_import_to_an_existing_array_keeps_its_comment_and_the_rest():
    orig = 'version = 2\nimports = ["/etc/a.toml"]  # theirs\n[plugins]\n  x = {y = 1}\n'
    text = containerd.add_import(orig, FRAG)
    assert toml_loads(text) == {**toml_loads(orig), "imports": ["/etc/a.toml", FRAG]}
    assert "# theirs" in text and "# imports: direct-lvm" not in text
    assert text.endswith("[plugins]\n  x = {y = 1}\n")
    back = containerd.remove_import(text, FRAG)
    assert toml_loads(back) == toml_loads(orig) and "# theirs" in back


def test_removing_the_only_entry_of_their_array_keeps_the_empty_array():
    orig = "version = 2\nimports = []\n"
    text = containerd.add_import(orig, FRAG)
    assert toml_loads(text)["imports"] == [FRAG]
    assert toml_loads(containerd.remove_import(text, FRAG)) == {"version": 2, "imports": []}


def test_our_import_from_an_earlier_release_is_taken_out_with_its_note():
    # the hand-written editor before tomlkit wrote the same two lines above the key
    orig = (DATA / "containerd-config.toml-bookworm").read_text()
    earlier = (
        f"# imports: direct-lvm added {FRAG} (its devmapper snapshotter config);\n"
        f'# nothing else in this file was changed\nimports = ["{FRAG}"]\n' + orig
    )
    assert containerd.add_import(orig, FRAG) == earlier
    assert containerd.remove_import(earlier, FRAG) == orig


@pytest.mark.parametrize("text", ['imports = "/etc/a.toml"\n', "imports = [\n"])
def test_imports_that_cannot_be_edited_are_refused(text):
    with pytest.raises(ConfigError, match="imports is not a list|not valid TOML"):
        containerd.add_import(text, FRAG)
    with pytest.raises(ConfigError, match="imports is not a list|not valid TOML"):
        containerd.remove_import(text, FRAG)


def test_dropin_waits_for_the_pool_device_node():
    s = mkspec(runtime="containerd-devmapper", vg="c-d", pool="p")
    text = containerd.dropin(s)
    assert "ExecStartPre=-udevadm wait --timeout=60 /dev/mapper/c--d-p\n" in text


def test_fragment_values_are_toml_escaped():
    s = mkspec(
        runtime="containerd-devmapper",
        vg="c-d",
        pool="p",
        containerd={"fs_options": 'a"b\\c\n', "fs_type": "xfs", "async_remove": True},
    )
    frag = toml_loads(containerd.fragment(s, 2))
    dm = frag["plugins"][containerd.SNAPSHOTTER]
    assert frag["version"] == 2
    assert dm["pool_name"] == "c--d-p"  # LVM's dash doubling
    assert dm["fs_options"] == 'a"b\\c\n' and dm["fs_type"] == "xfs"
    assert dm["async_remove"] is True and dm["base_image_size"] == str(10 * GIB)
    plain = toml_loads(containerd.fragment(mkspec(runtime="containerd-devmapper"), 3))
    assert "fs_type" not in plain["plugins"][containerd.SNAPSHOTTER]  # containerd's default


def test_escaping_helpers():
    for value in ['q"uote', "back\\slash", "nl\nand\x7f\x01"]:
        assert toml_loads(f"k = {toml_str(value)}")["k"] == value


def test_plugin_status_from_ctr_output():
    out = ("TYPE                            ID          PLATFORMS      STATUS\n"
           "io.containerd.snapshotter.v1    devmapper   linux/amd64    error\n"
           "io.containerd.snapshotter.v1    overlayfs   linux/amd64    ok\n")  # fmt: skip
    assert containerd.plugin_status(out) == "error"
    assert containerd.plugin_status(out.replace("error", "ok   ")) == "ok"
    assert containerd.plugin_status("") is None


# ------------------------------------------------------------------ version gate


def test_gate_per_runtime():
    with pytest.raises(ConfigError, match="containerd, but it is not installed"):
        check_runtime(mkspec(runtime="containerd-devmapper"), None,
                           ServiceState("containerd.service", False))  # fmt: skip
    with pytest.raises(ConfigError, match="need containerd >= 1.6.*'containerd 1.5"):
        check_runtime(mkspec(runtime="containerd-devmapper", containerd={"fs_type": "xfs"}),
                           None, ServiceState("containerd.service", True, (1, 5),
                                              "containerd 1.5.9"))  # fmt: skip
    check_runtime(mkspec(runtime="containerd-devmapper"), None, ctd())
    with pytest.raises(ConfigError, match="docker-overlay2 needs Docker, but dockerd is not"):
        check_runtime(mkspec(runtime="docker-overlay2"),
                           ServiceState("docker.service", False))  # fmt: skip
    check_runtime(mkspec(runtime="docker-overlay2"), docker26())
    with pytest.raises(ConfigError, match="26.1.5.*removed in Docker 25.0") as e:
        check_runtime(mkspec(), docker26())
    assert "docker-overlay2" in str(e.value) and "containerd-devmapper" in str(e.value)


def test_runtime_sections_belong_to_their_runtime():
    with pytest.raises(ConfigError, match="overlay2: set, but runtime is docker-devicemapper"):
        mkspec(overlay2={"lv": "x"})
    with pytest.raises(ConfigError, match="root_path"):
        mkspec(runtime="containerd-devmapper", containerd={"root_path": "/var/../x"})
    assert mkspec(runtime="docker-overlay2").data_percent == 100
    assert mkspec(runtime="docker-overlay2", data_percent=50).data_percent == 50
    assert mkspec(runtime="containerd-devmapper").data_percent == 80


# ------------------------------------------------------------------ containerd plans


def test_containerd_blank_disk_plan(blank_disk):
    s = mkspec(runtime="containerd-devmapper")
    c = ctd()
    files = core.desired_files(s, state(c))
    obs = make_observed(LvmState(), {"/dev/vdb": blank_disk()}, {}, containerd=c)
    p = plan(s, obs, files)
    argv0 = [st.argv[:2] if st.action is Action.RUN else ("write", st.path) for st in p.steps]
    assert argv0 == [
        ("write", "/etc/lvm/profile/docker-thinpool.profile"),
        ("vgcreate", "--addtag"), ("lvcreate", "--yes"),
        ("write", FRAG), ("write", containerd.CONFIG), ("write", containerd.DROPIN),
        ("systemctl", "daemon-reload"), ("systemctl", "restart"),
    ]  # fmt: skip
    assert p.steps[-1].argv == ("systemctl", "restart", "containerd.service")
    boot = plan(s, obs, files, restart=RestartMode.BOOT)  # containerd not running: no start
    assert boot.steps[-1].argv == ("systemctl", "daemon-reload")


def pool_lvm(s):
    tag = frozenset({OWNER_TAG})
    return LvmState(
        pvs=(PV("/dev/vdb", "pv", s.vg, 4 * GIB, 4 * GIB - (4 << 20)),),
        vgs=(VG(s.vg, "vg", 4 * GIB - (4 << 20), 201 * (4 << 20), 4 << 20, 1023, 201, tag),),
        lvs=(LV(s.vg, s.pool, "lv", "twi-a-tz--", 818 * (4 << 20), 8 << 20, 0.0, 10.0,
                s.profile_name,
                tag, "queue", "thin-pool", s.chunk_size, False, "monitored"),),
    )  # fmt: skip


def test_containerd_converged_plans_nothing_and_restarts_a_broken_plugin():
    s = mkspec(runtime="containerd-devmapper")
    c = ctd(active=True)
    files = core.desired_files(s, state(c))
    obs = make_observed(pool_lvm(s), {}, dict(files), containerd=c, devmapper_status="ok")
    assert plan(s, obs, files).empty
    broken = make_observed(pool_lvm(s), {}, dict(files), containerd=c, devmapper_status="error")
    assert [st.argv for st in plan(s, broken, files).steps] == [
        ("systemctl", "restart", "containerd.service")]  # fmt: skip
    at_boot = plan(s, broken, files, restart=RestartMode.BOOT).steps
    assert [st.argv for st in at_boot] == [
        ("systemctl", "try-restart", "--no-block", "containerd.service")]  # fmt: skip


# ------------------------------------------------------------------ docker-overlay2


def o2spec(**kw):
    return mkspec(runtime="docker-overlay2", **kw)


def test_overlay2_blank_disk_plan(blank_disk):
    s = o2spec(overlay2={"container_size": "2G"})
    d = docker26()
    files = core.desired_files(s, state(d))
    assert set(files) == {MOUNT_UNIT_PATH, DOCKER_DROPIN}  # no pool: no LVM profile
    obs = make_observed(LvmState(), {"/dev/vdb": blank_disk()}, {}, docker=d)
    p = plan(s, obs, files)
    argv = [st.argv if st.action is Action.RUN else ("write", st.path) for st in p.steps]
    assert argv == [
        ("vgcreate", "--addtag", OWNER_TAG, "docker", "/dev/vdb"),
        ("lvcreate", "--yes", "--type", "linear", "--name", "docker", "--extents", "100%VG",
         "--addtag", OWNER_TAG, "docker"),
        ("mkfs.xfs", "-q", "-n", "ftype=1", "/dev/mapper/docker-docker"),
        ("write", MOUNT_UNIT_PATH), ("write", DOCKER_DROPIN),
        ("systemctl", "daemon-reload"), ("systemctl", "enable", MOUNT_UNIT),
        ("systemctl", "start", MOUNT_UNIT), ("systemctl", "restart", "docker.service"),
    ]  # fmt: skip
    assert "Options=defaults,prjquota" in files[MOUNT_UNIT_PATH]
    assert "What=/dev/mapper/docker-docker" in files[MOUNT_UNIT_PATH]
    assert "RequiresMountsFor=/var/lib/docker" in files[DOCKER_DROPIN]
    assert "--storage-driver=overlay2 --storage-opt=overlay2.size=2147483648" in files[
        DOCKER_DROPIN]  # fmt: skip
    assert "prjquota" not in core.desired_files(o2spec(), state(d))[MOUNT_UNIT_PATH]


def lv_lvm(s, attr="-wi-a-----"):
    tag = frozenset({OWNER_TAG})
    return LvmState(
        pvs=(PV("/dev/vdb", "pv", s.vg, 4 * GIB, 4 * GIB - (4 << 20)),),
        vgs=(VG(s.vg, "vg", 4 * GIB - (4 << 20), 0, 4 << 20, 1023, 0, tag),),
        lvs=(LV(s.vg, s.lv, "lv", attr, 4 * GIB - (4 << 20), 0, None, None, "", tag,
                "", "linear"),),
    )  # fmt: skip


def converged_o2(s, **kw):
    d = docker26(True, ["dockerd", "--storage-driver=overlay2"])
    files = core.desired_files(s, state(d))
    base = dict(lvm=lv_lvm(s), files=dict(files), docker=d, lv_signatures=("xfs",),
                docker_root_mount=OURS, mount_enabled=True)  # fmt: skip
    return make_observed(**{**base, **kw}), files


def test_overlay2_converged_plans_nothing():
    s = o2spec()
    obs, files = converged_o2(s)
    assert plan(s, obs, files).empty
    assert plan(s, obs, files, restart=RestartMode.BOOT).empty


def test_overlay2_lv_without_filesystem_gets_mkfs_and_a_foreign_one_is_refused():
    s = o2spec()
    obs, files = converged_o2(s, lv_signatures=(), docker_root_mount="")
    steps = [st.argv for st in plan(s, obs, files).steps]
    assert steps[0] == ("mkfs.xfs", "-q", "-n", "ftype=1", "/dev/mapper/docker-docker")
    obs, files = converged_o2(s, lv_signatures=("ext4",), docker_root_mount="")
    with pytest.raises(RefusedError, match="holds ext4"):
        plan(s, obs, files)
    obs, files = converged_o2(s, lvm=lv_lvm(s, "twi-a-tz--"))
    with pytest.raises(RefusedError, match="not a plain"):
        plan(s, obs, files)


def test_overlay2_takeover_moves_old_storage_aside():
    s = o2spec()
    obs, files = converged_o2(s, docker_root_mount="",
                              docker_foreign=("/var/lib/docker/overlay2",),
                              timestamp="20260101T000000Z")  # fmt: skip
    argv = [st.argv for st in plan(s, obs, files).steps]
    assert argv == [
        ("systemctl", "stop", "docker.socket", "docker.service"),
        ("mv", "--no-target-directory", "/var/lib/docker",
         "/var/lib/docker.direct-lvm-backup-20260101T000000Z"),
        ("systemctl", "start", MOUNT_UNIT),
        ("systemctl", "restart", "docker.service"),
    ]  # fmt: skip
    boot = [st.argv for st in plan(s, obs, files, restart=RestartMode.BOOT).steps]
    assert boot[-1] == ("systemctl", "start", "--no-block", "docker.service")


def test_overlay2_refuses_another_mount_and_a_data_root():
    s = o2spec()
    obs, files = converged_o2(s, docker_root_mount="/dev/sdz1 (ext4)")
    with pytest.raises(RefusedError, match="is a mount of /dev/sdz1"):
        plan(s, obs, files)
    obs, files = converged_o2(s, daemon_json='{"data-root": "/srv/docker"}')
    with pytest.raises(ConfigError, match="data-root"):
        plan(s, obs, files)


def test_a_plain_lv_is_probed_with_one_findmnt_and_a_converged_verify_asks_no_more(
    monkeypatch,
):
    s = o2spec()
    mounts = findmnt(
        ("/", "/dev/vda1", "ext4", "254:1", "rw"),
        ("/var/lib/docker", "/dev/mapper/docker-docker", "xfs", "254:4", "rw,prjquota"),
    )
    calls = []
    monkeypatch.setattr(lvroot, "probe_mounts", lambda: calls.append(1) or mounts)
    monkeypatch.setattr(lvroot, "devno", lambda path: "254:4")  # our LV's node
    root, foreign = lvroot.probe_root_dir(s.lv_path, "/var/lib/docker")
    assert (root.mount, root.at_root, foreign) == (OURS, mounts[1], ())
    checks = core.verify(s, lv_lvm(s), restarted=False, probed=RuntimeState(root=root))
    assert "/var/lib/docker: xfs on /dev/mapper/docker-docker" in checks
    assert calls == [1]  # the probe's findmnt only
    other = RuntimeState(root=RootState(at_root=findmnt(("/var/lib/docker", "/dev/sdz1",
                                                        "ext4", "8:1", "rw"))[0]))  # fmt: skip
    with pytest.raises(VerifyError, match="/var/lib/docker is not mounted from"):
        core.verify(s, lv_lvm(s), restarted=False, probed=other)
    core.verify(s, lv_lvm(s), restarted=False)  # after changes: findmnt again
    assert calls == [1, 1]


def test_status_lists_overlay2_volumes_and_their_mount():
    s = o2spec()
    lvm = lv_lvm(s)
    info = findmnt(("/var/lib/docker", "/dev/mapper/docker-docker", "xfs", "254:4", "rw,prjquota"))
    (v,) = (x.to_json() for x in lvroot.volumes(lvm, info, ("/var/lib/docker",)))
    assert (v["vg"], v["lv"], v["dm_path"]) == ("docker", "docker", "/dev/mapper/docker-docker")
    assert v["mounted_at"] is None  # no such device node on the test host: not ours
    assert (
        lvroot.volumes(pool_lvm(mkspec(runtime="containerd-devmapper")), info, ("/var/lib/docker",))
        == []
    )


def test_overlay2_lv_grows_with_its_vg_and_its_xfs_follows_online():
    s = o2spec()
    lvm = lv_lvm(s)
    grown = LvmState(pvs=(PV("/dev/vdb", "pv", s.vg, 8 * GIB, lvm.pvs[0].size),),
                     vgs=lvm.vgs, lvs=lvm.lvs)  # fmt: skip
    obs, files = converged_o2(s, lvm=grown, fs_bytes=4 * GIB - (4 << 20))
    argv = [st.argv for st in plan(s, obs, files).steps]
    assert argv == [
        ("pvresize", "/dev/vdb"),
        ("lvextend", "--extents", "2047", "docker/docker"),  # 100% of 8 GiB less 1 MiB
        ("xfs_growfs", "-d", "/var/lib/docker"),
    ]
    # at boot too (the mount is up: local-fs.target), with no docker restart
    assert [st.argv for st in plan(s, obs, files, restart=RestartMode.BOOT).steps] == argv
    # half the VG: the LV already has more than that; it is never shrunk
    half = o2spec(data_percent=50)
    obs, files = converged_o2(half)
    p = plan(half, obs, files)
    assert p.empty
    assert any("never shrinks" in f for f in p.facts)


def test_overlay2_xfs_left_behind_by_a_stopped_run_is_grown():
    s = o2spec()
    lv_size = lv_lvm(s).lvs[0].size
    for fs, steps in (
        (lv_size - (16 << 20), []),  # mkfs's unused tail: converged
        (lv_size - (512 << 20), [("xfs_growfs", "-d", "/var/lib/docker")]),
    ):
        obs, files = converged_o2(s, fs_bytes=fs)
        assert [st.argv for st in plan(s, obs, files).steps] == steps


def test_xfs_geometry_size():
    import struct

    geom = struct.pack("=8IQ", 4096, 0, 65536, 4, 2560, 512, 512, 25, 262144).ljust(112, b"\0")
    assert lvroot.parse_xfs_geometry(geom) == GIB
