"""containerd-overlayfs and podman: the refusals read from the runtime's own config,
what their runtime reports, and their plans (blank disk, converged, takeover, growth,
refusals)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from obs import findmnt

from direct_lvm import OWNER_TAG, core, spec
from direct_lvm._compat import toml_loads
from direct_lvm.errors import ConfigError, RefusedError
from direct_lvm.observed import OURS, Observed, RootState, RuntimeState
from direct_lvm.plan import plan
from direct_lvm.probe import LV, PV, VG, LvmState
from direct_lvm.runtimes import containerd_overlayfs as co
from direct_lvm.runtimes import podman as pm
from direct_lvm.runtimes._lvroot import busy_below, mount_unit_name
from direct_lvm.runtimes._systemd import RestartMode, ServiceState
from direct_lvm.steps import Action

GIB = 1 << 30

BOOKWORM_CONFIG = """version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
"""


# ------------------------------------------------------------------ containerd's config


def test_bookworm_containerd_config_has_no_conflict():
    assert co.conflicts([(co.CONFIG, BOOKWORM_CONFIG)]) == []
    assert co.conflicts([(co.CONFIG, 'root = "/var/lib/containerd/"\n')]) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('root = "/srv/containerd"\n', 'root = "/srv/containerd"'),
        ('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\nsnapshotter = "zfs"\n',
         'plugins."io.containerd.grpc.v1.cri".containerd.snapshotter = "zfs"'),
        ('version = 3\n[plugins."io.containerd.cri.v1.images"]\nsnapshotter = "native"\n',
         'plugins."io.containerd.cri.v1.images".snapshotter = "native"'),
        ('[plugins.cri.containerd]\nsnapshotter = "devmapper"\n',
         'plugins.cri.containerd.snapshotter = "devmapper"'),
        ('version = 2\n[plugins."io.containerd.snapshotter.v1.overlayfs"]\nroot_path = "/srv/o"\n',
         'plugins."io.containerd.snapshotter.v1.overlayfs".root_path = "/srv/o"'),
        ('disabled_plugins = ["io.containerd.snapshotter.v1.overlayfs"]\n',
         "disabled_plugins"),
        ('version = 2\n[plugins."io.containerd.snapshotter.v1.devmapper"]\npool_name = "x"\n',
         "devmapper snapshotter"),
        ("root = [", "is not valid TOML"),
    ],
)  # fmt: skip
def test_containerd_config_conflicts_name_the_file_and_the_value(text, found):
    (line,) = co.conflicts([("/etc/containerd/x.toml", text)])
    assert line.startswith("/etc/containerd/x.toml ")
    assert found in line


def test_imports_are_read_relative_globbed_once_and_recursively():
    files = {
        co.CONFIG: 'imports = ["conf.d/*.toml", "/etc/abs.toml", "/etc/missing.toml"]\n',
        "/etc/containerd/conf.d/a.toml": 'imports = ["/etc/abs.toml"]\n',
        "/etc/abs.toml": 'imports = ["/etc/containerd/config.toml"]\nroot = "/srv/x"\n',
    }
    globbed = {"/etc/containerd/conf.d/*.toml": ["/etc/containerd/conf.d/a.toml"]}
    got = co.read_configs(files.get, lambda pattern: globbed.get(pattern, []))
    assert [p for p, _ in got] == [co.CONFIG, "/etc/containerd/conf.d/a.toml", "/etc/abs.toml"]
    assert co.conflicts(got) == ['/etc/abs.toml sets root = "/srv/x"']


def test_overlayfs_status_from_ctr_plugins_ls():
    out = (
        "TYPE                            ID          PLATFORMS      STATUS\n"
        "io.containerd.snapshotter.v1    devmapper   linux/amd64    error\n"
        "io.containerd.snapshotter.v1    overlayfs   linux/amd64    ok\n"
    )
    assert co.overlayfs_status(out) == "ok"
    assert co.overlayfs_status(out.replace("overlayfs", "native")) is None


# ------------------------------------------------------------------ podman's storage.conf


@pytest.mark.parametrize(
    "text",
    [
        "",
        '[storage]\ndriver = "overlay"\ngraphroot = "/var/lib/containers/storage"\n',
        '[storage]\nrunroot = "/run/containers/storage"\n',
        '[storage]\ndriver = ""\n[storage.options.overlay]\nmountopt = "nodev"\n',
    ],
)
def test_storage_conf_that_agrees(text):
    assert pm.storage_conf_conflicts(text) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('[storage]\ngraphroot = "/srv/pods"\n', 'graphroot = "/srv/pods"'),
        ('[storage]\ndriver = "vfs"\n', 'driver = "vfs"'),
        # an unterminated string: every tomlkit refuses it (0.6, bullseye's, reads an
        # unclosed "[storage" header at the end of the file as a table)
        ('[storage]\ndriver = "overlay\n', "is not valid TOML"),
    ],
)
def test_storage_conf_conflicts_name_the_value(text, found):
    (line,) = pm.storage_conf_conflicts(text)
    assert line.startswith(pm.STORAGE_CONF) and found in line


def test_podman_info_problems():
    ok = {"store": {"graphRoot": pm.ROOT, "graphDriverName": "overlay"}}
    assert pm.info_problems(ok) == []
    (bad,) = pm.info_problems({"store": {"graphRoot": pm.ROOT, "graphDriverName": "vfs"}})
    assert "'vfs'" in bad
    assert pm.info_problems({}) != []


def test_podman_version():
    assert pm.parse_podman_version("4.3.1+ds1-8+deb12u1+b3") == (4, 3)
    assert pm.parse_podman_version("podman version 5.4.2") == (5, 4)
    assert pm.parse_podman_version("") is None


# ------------------------------------------------------------------ plans


def mkspec(runtime, **kw):
    return spec.from_mapping({"runtime": runtime, "devices": ["/dev/vdb"], **kw})


def installed(unit, active=False):
    return ServiceState(unit, True, (1, 6), "containerd 1.6.20~ds1-1", active)


def lv_lvm(s):
    tag = frozenset({OWNER_TAG})
    return LvmState(
        pvs=(PV("/dev/vdb", "pv", s.vg, 4 * GIB, 4 * GIB - (4 << 20)),),
        vgs=(VG(s.vg, "vg", 4 * GIB - (4 << 20), 0, 4 << 20, 1023, 0, tag),),
        lvs=(LV(s.vg, s.lv, "lv", "-wi-a-----", 4 * GIB - (4 << 20), 0, None, None, "", tag,
                "", "linear"),),
    )  # fmt: skip


RUNTIMES = {
    "containerd-overlayfs": (co, "containerd.service", "/var/lib/containerd"),
    "podman": (pm, "podman.socket", "/var/lib/containers/storage"),
}


def state_of(runtime, service, **kw):
    if runtime == "containerd-overlayfs":
        return co.State(service=service, configs=((co.CONFIG, BOOKWORM_CONFIG),), **kw)
    return RuntimeState(service=service, **kw)


def converged(runtime, s, *, active=True, root=None, **kw):
    _, unit, _ = RUNTIMES[runtime]
    state = state_of(runtime, installed(unit, active),
                     root=root or RootState(OURS, ("xfs",), True, 4 * GIB - (4 << 20)))  # fmt: skip
    files = core.desired_files(s, state)
    return Observed(**{"lvm": lv_lvm(s), "files": dict(files), "runtime": state, **kw}), files


def argv(p):
    return [st.argv if st.action is Action.RUN else ("write", st.path) for st in p.steps]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_blank_disk_plan(runtime, blank_disk):
    mod, unit, root = RUNTIMES[runtime]
    s = mkspec(runtime)
    assert (s.data_percent, s.lv) == (100, mod.PLUGIN.parse_section({"lv": s.lv}).lv)
    state = state_of(runtime, installed(unit), root=RootState())
    files = core.desired_files(s, state)
    obs = Observed(LvmState(), {"/dev/vdb": blank_disk()}, {}, runtime=state)
    p = plan(s, obs, files)
    mount = mount_unit_name(root)
    lv_path = f"/dev/mapper/docker-{s.lv}"
    steps = argv(p)
    assert steps[:3] == [
        ("vgcreate", "--addtag", OWNER_TAG, "docker", "/dev/vdb"),
        ("lvcreate", "--yes", "--type", "linear", "--name", s.lv, "--extents", "100%VG",
         "--addtag", OWNER_TAG, "docker"),
        ("mkfs.xfs", "-q", "-n", "ftype=1", lv_path),
    ]  # fmt: skip
    assert steps[5:8] == [("systemctl", "daemon-reload"), ("systemctl", "enable", mount),
                          ("systemctl", "start", mount)]  # fmt: skip
    unit_file = files[f"/etc/systemd/system/{mount}"]
    assert f"What={lv_path}\n" in unit_file and f"Where={root}\n" in unit_file
    assert "Type=xfs" in unit_file and "WantedBy=local-fs.target" in unit_file
    if runtime == "podman":
        assert steps[3:5] == [("write", f"/etc/systemd/system/{mount}"), ("write", pm.STORAGE_CONF)]
        assert len(steps) == 8  # podman: no daemon to restart
        conf = toml_loads(files[pm.STORAGE_CONF])
        assert conf == {"storage": {"driver": "overlay", "graphroot": root,
                                    "runroot": "/run/containers/storage"}}  # fmt: skip
    else:
        assert steps[3:5] == [("write", f"/etc/systemd/system/{mount}"), ("write", co.DROPIN)]
        assert steps[8:] == [("systemctl", "restart", "containerd.service")]
        assert f"RequiresMountsFor={root}\n" in files[co.DROPIN]
        # at boot, containerd (ordered after us) is never started from here
        assert not any(
            "containerd.service" in a for a in argv(plan(s, obs, files, restart=RestartMode.BOOT))
        )


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_converged_plans_nothing(runtime):
    s = mkspec(runtime)
    for active in (True, False):
        obs, files = converged(runtime, s, active=active)
        assert plan(s, obs, files, restart=RestartMode.BOOT).empty
        assert plan(s, obs, files, restart=RestartMode.NEVER).empty
    obs, files = converged(runtime, s)
    assert plan(s, obs, files).empty


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_takeover_moves_the_root_aside(runtime):
    mod, unit, root = RUNTIMES[runtime]
    s = mkspec(runtime)
    obs, files = converged(runtime, s, root=RootState("", ("xfs",), True, None),
                           timestamp="20260101T000000Z")  # fmt: skip
    obs = Observed(**{**obs.__dict__, "runtime": replace(obs.runtime, foreign=(f"{root}/x",))})
    steps = argv(plan(s, obs, files))
    stop = ("systemctl", "stop", *mod.PLUGIN.units)
    backup = f"{root}.direct-lvm-backup-20260101T000000Z"
    assert steps[:4] == [stop, ("mv", "--no-target-directory", root, backup),
                         ("systemctl", "daemon-reload"),
                         ("systemctl", "start", mount_unit_name(root))]  # fmt: skip
    restart = {
        "podman": ("systemctl", "start", "podman.socket"),
        "containerd-overlayfs": ("systemctl", "restart", "containerd.service"),
    }
    assert steps[4:] == [restart[runtime]]
    boot = argv(plan(s, obs, files, restart=RestartMode.BOOT))
    assert boot[-1][:3] == ("systemctl", "start", "--no-block")
    # never from under running containers
    busy = RootState("", ("xfs",), True, None, busy=(f"{root}/overlay/abc/merged",))
    obs = Observed(**{**obs.__dict__, "runtime": replace(obs.runtime, root=busy)})
    with pytest.raises(RefusedError, match="in use by running containers"):
        plan(s, obs, files)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_refuses_another_mount(runtime):
    s = mkspec(runtime)
    obs, files = converged(runtime, s, root=RootState("dl-other (tmpfs)", ("xfs",), True, None))
    with pytest.raises(RefusedError, match=r"is a mount of dl-other \(tmpfs\)"):
        plan(s, obs, files)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_lv_and_xfs_grow_online_with_the_vg(runtime):
    _, _, root = RUNTIMES[runtime]
    s = mkspec(runtime)
    obs, files = converged(runtime, s)
    lvm = obs.lvm
    grown = LvmState(pvs=(PV("/dev/vdb", "pv", s.vg, 8 * GIB, lvm.pvs[0].size),),
                     vgs=lvm.vgs, lvs=lvm.lvs)  # fmt: skip
    obs = Observed(**{**obs.__dict__, "lvm": grown})
    expected = [("pvresize", "/dev/vdb"), ("lvextend", "--extents", "2047", s.ref),
                ("xfs_growfs", "-d", root)]  # fmt: skip
    assert argv(plan(s, obs, files)) == expected
    assert argv(plan(s, obs, files, restart=RestartMode.BOOT)) == expected


def test_containerd_config_conflict_is_refused_before_any_step():
    s = mkspec("containerd-overlayfs")
    obs, files = converged("containerd-overlayfs", s)
    bad = replace(obs.runtime, configs=((co.CONFIG, 'root = "/srv/c"\n'),))
    with pytest.raises(ConfigError, match=r'/etc/containerd/config.toml sets root = "/srv/c"'):
        plan(s, Observed(**{**obs.__dict__, "runtime": bad}), files)


def test_podman_keeps_a_storage_conf_that_agrees_and_refuses_one_that_does_not():
    s = mkspec("podman", podman={"lv": "pods"})
    assert s.ref == "docker/pods"
    mine = '[storage]\ndriver = "overlay"\ngraphroot = "/var/lib/containers/storage"\n'
    obs, _ = converged("podman", s)
    state = replace(obs.runtime, config=mine)
    files = core.desired_files(s, state)
    assert pm.STORAGE_CONF not in files  # the user's file is left as it is
    p = plan(s, Observed(**{**obs.__dict__, "runtime": state}), files)
    assert p.empty and any("agrees" in f for f in p.facts)
    state = replace(obs.runtime, config='[storage]\ndriver = "vfs"\n')
    files = core.desired_files(s, state)
    with pytest.raises(ConfigError, match=r'storage.conf sets driver = "vfs"'):
        plan(s, Observed(**{**obs.__dict__, "runtime": state}), files)
    # our own file is rewritten when it differs
    state = replace(obs.runtime, config=core.desired_files(s, obs.runtime)[pm.STORAGE_CONF] + "#")
    assert pm.STORAGE_CONF in core.desired_files(s, state)


def test_busy_mounts_below_a_root():
    info = findmnt(
        ("/", "/dev/vda1", "ext4", "254:1", "rw"),
        ("/var/lib/containers/storage/overlay/abc/merged", "overlay", "overlay", "0:60",
         "rw,lowerdir=/var/lib/containers/storage/overlay/l/X,upperdir=/u,workdir=/w"),
        ("/run/containerd/io.containerd.runtime.v2.task/k8s.io/c1/rootfs", "overlay", "overlay",
         "0:61", "rw,lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1."
         "overlayfs/snapshots/1/fs,upperdir=/u2,workdir=/w2"),
    )  # fmt: skip
    assert busy_below(info, "/var/lib/containers/storage") == (
        "/var/lib/containers/storage/overlay/abc/merged",)  # fmt: skip
    assert busy_below(info, "/var/lib/containerd") == (
        "/run/containerd/io.containerd.runtime.v2.task/k8s.io/c1/rootfs",)  # fmt: skip
    assert busy_below(info, "/var/lib/docker") == ()


def test_sections_belong_to_their_runtime():
    with pytest.raises(ConfigError, match="podman: set, but runtime is containerd-overlayfs"):
        mkspec("containerd-overlayfs", podman={"lv": "x"})
    assert mkspec("containerd-overlayfs").lv == "containerd"
    assert mkspec("podman").lv == "containers"
    assert mkspec("podman", data_percent=60).data_percent == 60
    mapping = spec.to_mapping(mkspec("podman", podman={"lv": "pods"}))
    assert mapping["podman"] == {"lv": "pods"} and mapping["runtime"] == "podman"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_gate_installed_or_not(runtime):
    mod, unit, _ = RUNTIMES[runtime]
    s = mkspec(runtime)
    missing = state_of(runtime, ServiceState(unit, False))
    with pytest.raises(ConfigError, match=f"runtime {runtime} needs"):
        mod.PLUGIN.check(s, missing)
    mod.PLUGIN.check(s, state_of(runtime, installed(unit)))
