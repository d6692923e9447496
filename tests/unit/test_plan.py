import pytest
from obs import check_runtime, make_observed, state

from direct_lvm import OWNER_TAG, core, spec
from direct_lvm.errors import ConfigError, RefusedError
from direct_lvm.plan import Action, plan
from direct_lvm.probe import LV, PV, VG, LvmState
from direct_lvm.runtimes._docker import DOCKER_DROPIN, DOCKER_ENV
from direct_lvm.runtimes._systemd import RestartMode, ServiceState

GIB = 1 << 30
EXT = 4 << 20  # lvm2's default extent
EXEC = "/usr/sbin/dockerd -H fd:// $DOCKER_OPTS"


def mkspec(**kw):
    data = {"devices": ["/dev/vdb"], **kw}
    return spec.from_mapping(data)


def docker(active=False, cmdline=()):
    return ServiceState("docker.service", True, (20, 10), "Docker version 20.10.24", active,
                        tuple(cmdline), EXEC)  # fmt: skip


def blank_observed(s, blank_disk, size=4 * GIB, **devkw):
    return make_observed(
        lvm=LvmState(), devices={"/dev/vdb": blank_disk(size=size, **devkw)},
        files={}, docker=docker(),
    )  # fmt: skip


def converged_lvm(s, *, monitor="monitored", profile=None, zero=False, chunk=None, tags=True):
    tag = frozenset({OWNER_TAG}) if tags else frozenset()
    return LvmState(
        pvs=(PV("/dev/vdb", "pv-uuid", s.vg, 4 * GIB, 4 * GIB - (4 << 20)),),
        vgs=(VG(s.vg, "vg-uuid", 4 * GIB - (4 << 20), 201 * EXT, EXT, 1023, 201, tag),),
        lvs=(LV(s.vg, s.pool, "lv-uuid", "twi-a-tz--", 818 * EXT, 8 << 20, 0.0, 10.0,
                s.profile_name if profile is None else profile, frozenset({OWNER_TAG}), "queue",
                "thin-pool", chunk or s.chunk_size, zero, monitor),),
    )  # fmt: skip


def converged_files(s):
    return core_files(s)


def core_files(s):
    return core.desired_files(s, state(docker()))


def test_blank_disk_plan_creates_everything_in_order(blank_disk):
    s = mkspec()
    files = core_files(s)
    p = plan(s, blank_observed(s, blank_disk), files)
    kinds = [(st.action, st.argv[:1] or (st.path,)) for st in p.steps]
    assert kinds == [
        (Action.WRITE, ("/etc/lvm/profile/docker-thinpool.profile",)),
        (Action.RUN, ("vgcreate",)),
        (Action.RUN, ("lvcreate",)),
        (Action.WRITE, (DOCKER_ENV,)),
        (Action.WRITE, (DOCKER_DROPIN,)),
        (Action.RUN, ("systemctl",)),
        (Action.RUN, ("systemctl",)),
    ]
    assert p.steps[-2].argv == ("systemctl", "daemon-reload")
    assert "image-setup bakes it" in p.steps[-2].reason
    assert p.steps[1].argv == ("vgcreate", "--addtag", OWNER_TAG, "docker", "/dev/vdb")
    lvcreate = p.steps[2].argv
    for flag, value in [("--type", "thin-pool"), ("--chunksize", "512k"), ("--zero", "n"),
                        ("--metadataprofile", "docker-thinpool"), ("--extents", "80%VG"),
                        ("--addtag", OWNER_TAG), ("--name", "thinpool")]:  # fmt: skip
        assert lvcreate[lvcreate.index(flag) + 1] == value
    assert p.steps[-1].argv == ("systemctl", "restart", "docker.service")
    assert all(st.reason for st in p.steps)
    assert p.notes == ()  # the defaults leave room for an extension


@pytest.mark.parametrize("zero_metadata", [True, False])
def test_zero_metadata_false_asks_lvm_for_the_header_only(blank_disk, zero_metadata):
    s = mkspec(zero_metadata=zero_metadata)
    p = plan(s, blank_observed(s, blank_disk), core_files(s))
    lvcreate = next(st.argv for st in p.steps if st.argv[:1] == ("lvcreate",))
    said = "metadata zeroed in its first 4 KiB only"
    if zero_metadata:  # lvm's default (the whole metadata LV and its spare) stays
        assert "--config" not in lvcreate
        assert not any(said in f for f in p.facts)
    else:
        assert lvcreate[lvcreate.index("--config") + 1] == "allocation/zero_metadata=0"
        assert lvcreate[-1] == "docker"  # the VG stays the last argument
        assert any(said in f for f in p.facts)


def test_converged_system_plans_nothing():
    s = mkspec()
    files = core_files(s)
    obs = make_observed(
        converged_lvm(s),
        {},
        dict(files),
        docker(True, ["dockerd", f"--storage-opt=dm.thinpooldev={s.pool_path}"]),
    )
    assert plan(s, obs, files).empty


def test_converged_pool_but_docker_running_elsewhere_restarts_only_docker():
    s = mkspec()
    files = core_files(s)
    obs = make_observed(converged_lvm(s), {}, dict(files), docker(True, ["dockerd"]))
    p = plan(s, obs, files)
    assert [st.argv for st in p.steps] == [("systemctl", "restart", "docker.service")]
    assert plan(s, obs, files, restart=RestartMode.NEVER).empty
    # at boot: a running dockerd is restarted without blocking the boot
    (step,) = plan(s, obs, files, restart=RestartMode.BOOT).steps
    assert step.argv == ("systemctl", "try-restart", "--no-block", "docker.service")


@pytest.mark.parametrize(
    ("lvm_kw", "expect"),
    [({"monitor": "not monitored"}, ("lvchange", "--monitor", "y")),
     ({"profile": ""}, ("lvchange", "--metadataprofile", "docker-thinpool")),
     ({"zero": True}, ("lvchange", "--zero", "n"))],
)  # fmt: skip
def test_drift_on_existing_pool_is_repaired_in_place(lvm_kw, expect):
    s = mkspec()
    files = core_files(s)
    obs = make_observed(
        converged_lvm(s, **lvm_kw),
        {},
        dict(files),
        docker(True, [f"--storage-opt=dm.thinpooldev={s.pool_path}"]),
    )
    p = plan(s, obs, files)
    assert [st.argv[: len(expect)] for st in p.steps] == [expect]
    assert p.steps[0].argv[-1] == "docker/thinpool"


def test_changed_autoextend_rewrites_only_the_profile():
    s = mkspec(autoextend={"threshold": 70, "percent": 10})
    old = core_files(mkspec())
    obs = make_observed(
        converged_lvm(s),
        {},
        dict(old),
        docker(True, [f"--storage-opt=dm.thinpooldev={s.pool_path}"]),
    )
    p = plan(s, obs, core_files(s))
    assert [st.path for st in p.steps] == ["/etc/lvm/profile/docker-thinpool.profile"]
    assert "thin_pool_autoextend_threshold = 70" in p.steps[0].content


def test_chunk_size_change_is_refused():
    s = mkspec(chunk_size="64K")
    obs = make_observed(converged_lvm(s, chunk=512 * 1024), {}, {}, docker())
    with pytest.raises(ConfigError, match="chunk size 512K, the config says 64K"):
        plan(s, obs, core_files(s))


def test_vg_not_ours_is_refused():
    s = mkspec()
    obs = make_observed(converged_lvm(s, tags=False), {}, {}, docker())
    with pytest.raises(RefusedError, match="not created by direct-lvm") as e:
        plan(s, obs, core_files(s))
    assert "vgchange --addtag direct_lvm docker" in str(e.value)


def test_hand_procedure_sizing_says_autoextend_cannot_fire(blank_disk):
    s = mkspec(data_percent=95)
    p = plan(s, blank_observed(s, blank_disk), core_files(s))
    assert len(p.notes) == 1
    assert "autoextend can never fire" in p.notes[0]
    suggested = int(p.notes[0].split("Set data_percent to ")[1].split()[0])
    assert 80 <= suggested < 95
    # the suggestion really leaves room for one extension; one more percent does not
    ok = mkspec(data_percent=suggested)
    assert plan(ok, blank_observed(ok, blank_disk), core_files(ok)).notes == ()
    over = mkspec(data_percent=suggested + 1)
    assert plan(over, blank_observed(over, blank_disk), core_files(over)).notes != ()


def test_sizing_note_silent_when_autoextend_disabled(blank_disk):
    s = mkspec(data_percent=95, autoextend={"threshold": 100})
    assert plan(s, blank_observed(s, blank_disk), core_files(s)).notes == ()


def test_data_plus_metadata_over_vg_is_refused(blank_disk):
    s = mkspec(data_percent=100)
    with pytest.raises(RefusedError, match="exceed the"):
        plan(s, blank_observed(s, blank_disk), core_files(s))


def test_device_too_small_is_refused(blank_disk):
    s = mkspec()
    with pytest.raises(RefusedError, match="below the minimum of 64 MiB"):
        plan(s, blank_observed(s, blank_disk, size=64 << 20), core_files(s))


REFUSALS = {
    "root disk": ({"is_root_disk": True, "mountpoints": ("/",)}, "root filesystem"),
    "mounted": ({"mountpoints": ("/srv",)}, "mounted at /srv"),
    "swap": ({"mountpoints": ("[SWAP]",)}, "mounted at [SWAP]"),
    "partitioned": ({"pttype": "gpt", "holders": ("/dev/vdb1",)}, "has partitions: /dev/vdb1"),
    "signature": ({"signatures": ("ext4",)}, "holds data signatures (ext4)"),
    "empty partition table": ({"pttype": "dos", "signatures": ("dos",)}, "signatures (dos)"),
    "read-only": ({"read_only": True}, "read-only"),
    "stacked dm": ({"holders": ("/dev/mapper/crypt",)}, "devices stacked on it"),
    "not a disk": ({"type": "rom"}, "is a rom device"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_unsafe_devices_are_refused(case, blank_disk):
    kw, needle = REFUSALS[case]
    s = mkspec()
    with pytest.raises(RefusedError, match="refusing|read-only|not a disk|is a") as e:
        plan(s, blank_observed(s, blank_disk, **kw), core_files(s))
    assert needle in str(e.value) and "fix:" in str(e.value)
    assert e.value.exit_code == 2


def test_foreign_vg_member_is_refused_even_with_wipe(blank_disk):
    s = mkspec(wipe_signatures=True)
    lvm = LvmState(pvs=(PV("/dev/vdb", "u", "data", 4 * GIB, 4 * GIB),))
    obs = make_observed(lvm, {"/dev/vdb": blank_disk(signatures=("LVM2_member",))}, {}, docker())
    with pytest.raises(RefusedError, match="volume group 'data'"):
        plan(s, obs, core_files(s))


def test_wipe_signatures_adds_a_wipefs_step_first(blank_disk):
    s = mkspec(wipe_signatures=True)
    p = plan(s, blank_observed(s, blank_disk, signatures=("ext4",)), core_files(s))
    assert p.steps[0].argv == ("wipefs", "--all", "/dev/vdb")
    assert any("wiped" in f for f in p.facts)


def test_by_id_link_is_used_through_its_resolved_node(blank_disk):
    s = spec.from_mapping({"devices": ["/dev/disk/by-id/virtio-data1"]})
    dev = blank_disk(path="/dev/disk/by-id/virtio-data1", real="/dev/vdc")
    obs = make_observed(LvmState(), {s.devices[0]: dev}, {}, docker())
    p = plan(s, obs, core_files(s))
    assert p.steps[1].argv[-1] == "/dev/vdc"
    assert "device /dev/disk/by-id/virtio-data1 -> /dev/vdc" in p.facts[0]


def test_vg_left_without_pool_gets_the_pool(blank_disk):
    s = mkspec()
    lvm = _vg_with(s)  # the VG, all of it free, no LV
    obs = make_observed(lvm, {}, dict(core_files(s)), docker())
    p = plan(s, obs, core_files(s))
    assert [st.argv[0] for st in p.steps] == ["lvcreate", "systemctl"]


def test_plan_json_has_argv_and_reason(blank_disk):
    s = mkspec()
    j = plan(s, blank_observed(s, blank_disk), core_files(s)).to_json()
    assert j["changes"] is True
    assert j["steps"][1]["argv"][0] == "vgcreate" and j["steps"][1]["reason"]
    assert j["steps"][0]["shell"].startswith("cat > /etc/lvm/profile/docker-thinpool.profile")


def test_version_gate_refuses_docker_25_before_touching_disks():
    s = mkspec()
    new = ServiceState("docker.service", True, (26, 1), "Docker version 26.1.5", False, (), EXEC)
    with pytest.raises(ConfigError, match="26.1.5.*removed in Docker 25.0") as e:
        check_runtime(s, new)
    assert "docker-overlay2" in str(e.value)
    with pytest.raises(ConfigError, match="dockerd is not installed"):
        check_runtime(s, ServiceState("docker.service", False))


def test_boot_mode_never_starts_docker(blank_disk):
    s = mkspec()
    p = plan(s, blank_observed(s, blank_disk), core_files(s), restart=RestartMode.BOOT)
    assert not any(st.argv[:1] == ("systemctl",) and st.argv[1] != "daemon-reload"
                   for st in p.steps)  # fmt: skip
    assert p.steps[-1].argv == ("systemctl", "daemon-reload")


def test_takeover_stops_docker_and_moves_old_storage_aside(blank_disk):
    s = mkspec()
    obs = make_observed(
        LvmState(), {"/dev/vdb": blank_disk()}, {}, docker(True, ["dockerd"]),
        docker_foreign=("/var/lib/docker/overlay2",), timestamp="20261127T120000Z",
    )  # fmt: skip
    p = plan(s, obs, core_files(s))
    argvs = [st.argv for st in p.steps if st.action is Action.RUN]
    stop = ("systemctl", "stop", "docker.socket", "docker.service")
    move = ("mv", "--no-target-directory", "/var/lib/docker",
            "/var/lib/docker.direct-lvm-backup-20261127T120000Z")  # fmt: skip
    assert argvs.index(stop) < argvs.index(move) < argvs.index(("systemctl", "restart",
                                                                "docker.service"))  # fmt: skip
    # the pool exists before docker is stopped: LVM work first
    assert argvs.index(stop) > [a[0] for a in argvs].index("lvcreate")
    assert not any(a[:1] == ("rm",) for a in argvs)


def test_takeover_at_boot_with_docker_not_running_only_moves(blank_disk):
    s = mkspec()
    obs = make_observed(LvmState(), {"/dev/vdb": blank_disk()}, {}, docker(),
                   docker_foreign=("/var/lib/docker/devicemapper/devicemapper/data",))  # fmt: skip
    p = plan(s, obs, core_files(s), restart=RestartMode.BOOT)
    assert [st.argv[0] for st in p.steps if st.action is Action.RUN] == [
        "vgcreate", "lvcreate", "mv", "systemctl"]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "needle"),
    [('{"storage-driver": "overlay2"}', "sets storage-driver"),
     ('{"storage-opts": ["dm.basesize=20G"], "debug": true}', "sets storage-opts"),
     ("{not json", "not valid JSON")],
)  # fmt: skip
def test_daemon_json_conflicts_are_refused(text, needle, blank_disk):
    s = mkspec()
    obs = make_observed(LvmState(), {"/dev/vdb": blank_disk()}, {}, docker(), daemon_json=text)
    with pytest.raises(ConfigError, match=needle) as e:
        plan(s, obs, core_files(s))
    assert "/etc/docker/daemon.json" in str(e.value) and "fix:" in str(e.value)


def test_daemon_json_without_storage_keys_is_fine(blank_disk):
    s = mkspec()
    obs = make_observed(LvmState(), {"/dev/vdb": blank_disk()}, {}, docker(),
                   daemon_json='{"log-driver": "journald"}')  # fmt: skip
    assert not plan(s, obs, core_files(s)).empty


def test_converged_by_id_config_is_quiet_about_its_own_pv():
    """A config naming its disk by /dev/disk/by-id sees the PV as /dev/vdb: same disk."""
    s = spec.from_mapping({"devices": ["/dev/disk/by-id/virtio-dl-data1"]})
    files = core_files(s)
    obs = make_observed(converged_lvm(s), {}, dict(files),
                   docker(True, [f"--storage-opt=dm.thinpooldev={s.pool_path}"]),
                   resolved={"/dev/disk/by-id/virtio-dl-data1": "/dev/vdb"})  # fmt: skip
    p = plan(s, obs, files)
    assert p.empty and p.notes == () and p.facts == ()


def test_pv_not_in_config_is_a_fact_not_a_warning():
    s = mkspec(devices=["/dev/vdc"])
    files = core_files(s)
    obs = make_observed(converged_lvm(s), {}, dict(files),
                   docker(True, [f"--storage-opt=dm.thinpooldev={s.pool_path}"]),
                   resolved={"/dev/vdc": "/dev/vdc"})  # fmt: skip
    p = plan(s, obs, files)
    assert p.notes == () and "also has /dev/vdb" in p.facts[0]


@pytest.mark.parametrize("restart", list(RestartMode))
def test_a_baked_dropin_needs_no_daemon_reload(blank_disk, restart):
    """image-setup baked the drop-in (systemd loaded it at boot): a first apply writes
    only the storage options, which dockerd reads at its next start."""
    s = mkspec()
    files = core_files(s)
    baked = {DOCKER_DROPIN: files[DOCKER_DROPIN]}
    obs = make_observed(lvm=LvmState(), devices={"/dev/vdb": blank_disk()}, files=baked,
                        docker=docker(active=True))  # fmt: skip
    p = plan(s, obs, files, restart=restart)
    systemctl = [st.argv for st in p.steps if st.argv[:1] == ("systemctl",)]
    assert (
        systemctl
        == {
            RestartMode.NOW: [("systemctl", "restart", "docker.service")],
            RestartMode.BOOT: [("systemctl", "try-restart", "--no-block", "docker.service")],
            RestartMode.NEVER: [],
        }[restart]
    )
    assert [st.path for st in p.steps if st.path.startswith("/etc/")][1:] == [DOCKER_ENV]
    # only the storage options differ (another pool): written, no reload
    other = mkspec(pool="other")
    obs = make_observed(lvm=converged_lvm(other), files=converged_files(s), docker=docker())
    p = plan(other, obs, core_files(other))
    ours = (DOCKER_ENV, DOCKER_DROPIN)
    docker_steps = [st.path or st.argv for st in p.steps
                    if st.path in ours or st.argv[:1] == ("systemctl",)]  # fmt: skip
    assert docker_steps == [DOCKER_ENV, ("systemctl", "restart", "docker.service")]


def _vg_with(s, *lvs, used=0):
    lvm = converged_lvm(s)
    vg = lvm.vgs[0]
    left = VG(vg.name, vg.uuid, vg.size, vg.size - used, vg.extent_size, vg.extent_count,
              vg.extent_count - used // vg.extent_size, vg.tags)  # fmt: skip
    return LvmState(lvm.pvs, (left,), tuple(lvs))


def _plain(s, name, *, tags=frozenset({OWNER_TAG}), size=8 << 20, attr="-wi-a-----"):
    return LV(s.vg, name, "lv-uuid", attr, size, 0, None, None, s.profile_name, tags, "",
              "linear")  # fmt: skip


def test_pool_half_made_by_a_stopped_lvcreate_is_removed_and_created_again():
    """A power-off inside `lvcreate --type thin-pool` leaves the pool's name on a plain
    metadata-sized LV carrying our tag (seen in CI's power-off test)."""
    s = mkspec()
    spare = _plain(s, "[lvol0_pmspare]", tags=frozenset(), attr="ewi-------")
    lvm = _vg_with(s, _plain(s, s.pool), spare, used=16 << 20)
    obs = make_observed(lvm, {}, dict(core_files(s)), docker())
    p = plan(s, obs, core_files(s))
    assert [st.argv[:2] for st in p.steps[:2]] == [("lvremove", "--yes"), ("lvcreate", "--yes")]
    assert p.steps[0].argv[-1] == f"{s.vg}/{s.pool}"
    assert "stopped midway" in p.steps[0].reason


@pytest.mark.parametrize(
    "lv_kw",
    [
        {"tags": frozenset()},  # not ours: the user's LV of that name
        {"attr": "-wi-ao----"},  # open: something uses it
        {"size": 32 * GIB},  # bigger than thin metadata can be: not lvcreate's leftover
    ],
    ids=["untagged", "open", "too-big"],
)
def test_plain_lv_with_the_pools_name_is_still_refused(lv_kw):
    s = mkspec()
    lvm = _vg_with(s, _plain(s, s.pool, **lv_kw), used=8 << 20)
    obs = make_observed(lvm, {}, dict(core_files(s)), docker())
    with pytest.raises(RefusedError, match="exists but is not a thin pool"):
        plan(s, obs, core_files(s))
