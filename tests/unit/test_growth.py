"""Growth of an existing VG and pool, the pool-full policy and status warnings (pure)."""

import dataclasses

import pytest
from obs import make_observed
from test_cli import pool
from test_plan import EXT, GIB, converged_lvm, core_files, docker, mkspec

from direct_lvm import core
from direct_lvm.errors import RefusedError, VerifyError
from direct_lvm.plan import plan
from direct_lvm.probe import LV, PV, LvmState


def grown(s, *, dev_size=None, pool_size=None, meta=None, **vgkw):
    """The converged 4 GiB state, with the PV's device and the pool changed as asked."""
    lvm = converged_lvm(s)
    pv = dataclasses.replace(lvm.pvs[0], dev_size=dev_size or lvm.pvs[0].dev_size)
    vg = dataclasses.replace(lvm.vgs[0], **vgkw)
    pool = dataclasses.replace(lvm.lvs[0], size=pool_size or lvm.lvs[0].size,
                               metadata_size=meta or lvm.lvs[0].metadata_size)  # fmt: skip
    spare = LV(s.vg, "[lvol0_pmspare]", "sp", "ewi-------", pool.metadata_size, 0, None, None,
               "", frozenset(), "")  # fmt: skip
    return LvmState((pv,), (vg,), (pool, spare))


def observe(s, lvm, devices=None):
    files = core_files(s)
    return make_observed(lvm, devices or {}, dict(files),
                    docker(True, [f"--storage-opt=dm.thinpooldev={s.pool_path}"]),
                    resolved={d: d for d in s.devices}), files  # fmt: skip


def argvs(p):
    return [st.argv for st in p.steps]


def test_grown_device_gets_pvresize_then_the_pool_grows_to_data_percent():
    s = mkspec()
    p = plan(s, *observe(s, grown(s, dev_size=8 * GIB)))
    # 8 GiB - 1 MiB pe_start = 2047 extents: 1024 more; 80% of 2047 = 1637 extents
    assert argvs(p) == [
        ("pvresize", "/dev/vdb"),
        ("lvextend", "--extents", "1637", "docker/thinpool"),
    ]
    assert "1024 more extent(s)" in p.steps[0].reason
    assert p.notes == ()


def test_less_than_one_extent_of_growth_is_no_change():
    s = mkspec()
    p = plan(s, *observe(s, grown(s, dev_size=4 * GIB + (512 << 10))))
    assert p.empty


def test_shrunk_device_is_refused_naming_both_sizes():
    s = mkspec()
    with pytest.raises(RefusedError) as e:
        plan(s, *observe(s, grown(s, dev_size=2 * GIB)))
    msg = str(e.value)
    assert "/dev/vdb is 2.00 GiB" in msg and "smaller than its physical volume" in msg
    assert "never shrinks" in msg and "fix: grow the volume back" in msg


def test_new_device_is_vgextended_and_the_pool_grows(blank_disk):
    s = mkspec(devices=["/dev/vdb", "/dev/vdc"])
    lvm = grown(s)
    obs, files = observe(s, lvm, {"/dev/vdc": blank_disk(path="/dev/vdc", size=4 * GIB)})
    p = plan(s, obs, files)
    # 1023 + 1023 extents; 80% = 1636
    assert argvs(p) == [
        ("vgextend", "docker", "/dev/vdc"),
        ("lvextend", "--extents", "1636", "docker/thinpool"),
    ]
    assert any("device /dev/vdc: 4.00 GiB disk, blank" in f for f in p.facts)


def test_new_device_with_signatures_is_refused_before_any_step(blank_disk):
    s = mkspec(devices=["/dev/vdb", "/dev/vdc"])
    obs, files = observe(
        s, grown(s), {"/dev/vdc": blank_disk(path="/dev/vdc", signatures=("xfs",))}
    )
    with pytest.raises(RefusedError, match="holds data signatures"):
        plan(s, obs, files)


def test_new_device_with_wipe_signatures_is_wiped_then_added(blank_disk):
    s = mkspec(devices=["/dev/vdb", "/dev/vdc"], wipe_signatures=True)
    obs, files = observe(
        s, grown(s), {"/dev/vdc": blank_disk(path="/dev/vdc", signatures=("xfs",))}
    )
    assert [a[0] for a in argvs(plan(s, obs, files))] == ["wipefs", "vgextend", "lvextend"]


def test_big_growth_extends_metadata_first_with_its_spare():
    s = mkspec()
    # 1 TiB device: 80% = ~819 GiB of data wants far more than 8 MiB of metadata
    p = plan(s, *observe(s, grown(s, dev_size=1024 * GIB)))
    assert [a[:2] for a in argvs(p)] == [
        ("pvresize", "/dev/vdb"),
        ("lvextend", "--poolmetadatasize"),
        ("lvextend", "--extents"),
    ]
    size = int(p.steps[1].argv[2].rstrip("b"))
    assert size > 8 << 20 and size % EXT == 0


def test_pool_larger_than_data_percent_is_left_as_a_fact():
    s = mkspec()
    p = plan(s, *observe(s, grown(s, pool_size=900 * EXT)))
    assert p.empty
    assert any("autoextend grew it; left as it is" in f for f in p.facts)


def test_higher_data_percent_extends_within_free_space():
    s = mkspec(data_percent=90)
    p = plan(s, *observe(s, grown(s)))
    # 90% of 1023 = 920 extents; 201 free extents hold the 102 more
    assert argvs(p) == [("lvextend", "--extents", "920", "docker/thinpool")]


def test_growth_capped_by_free_space_is_a_note():
    s = mkspec(data_percent=95)
    p = plan(s, *observe(s, grown(s, free_count=50, free=50 * EXT)))
    assert argvs(p) == [("lvextend", "--extents", "868", "docker/thinpool")]
    assert "only 200.00 MiB is free" in p.notes[0]


def test_explicit_metadata_below_current_is_a_fact_not_a_shrink():
    s = mkspec(metadata_size="4M")
    p = plan(s, *observe(s, grown(s)))
    assert p.empty and any("cannot shrink pool metadata" in f for f in p.facts)


def test_explicit_metadata_above_current_is_extended():
    s = mkspec(metadata_size="64M")
    p = plan(s, *observe(s, grown(s)))
    assert argvs(p) == [("lvextend", "--poolmetadatasize", f"{64 << 20}b", "docker/thinpool")]


# ------------------------------------------------------------------ error_when_full


def test_error_when_full_on_create_and_converged_in_place(blank_disk):
    s = mkspec(error_when_full=True)
    from test_plan import blank_observed

    steps = argvs(plan(s, blank_observed(s, blank_disk), core_files(s)))
    at = next(i for i, a in enumerate(steps) if a[:1] == ("lvcreate",))
    assert "--errorwhenfull" not in steps[at]  # lvcreate refuses it for thin pools
    assert steps[at + 1] == ("lvchange", "--errorwhenfull", "y", "docker/thinpool")
    default = argvs(plan(mkspec(), blank_observed(s, blank_disk), core_files(s)))
    assert not any(a[:1] == ("lvchange",) for a in default)
    p = plan(s, *observe(s, grown(s)))  # the pool queues (LVM's default)
    assert argvs(p) == [("lvchange", "--errorwhenfull", "y", "docker/thinpool")]
    back = plan(mkspec(), *observe(mkspec(), grown(s)))
    assert back.empty  # default false matches a queueing pool


def test_verify_checks_when_full():
    s = mkspec(error_when_full=True)
    lvm = grown(s)
    with pytest.raises(VerifyError, match="when full: 'queue', expected 'error'"):
        core.verify(s, lvm, restarted=False)


# ------------------------------------------------------------------ status warnings


def entry(**kw):
    base = {"vg": "docker", "pool": "thinpool", "data_percent": 50.0, "metadata_percent": 10.0,
            "autoextend_threshold": 80, "autoextend_percent": 20, "extensions_left": 0,
            "vg_free": 0}  # fmt: skip
    return pool(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "warns"),
    [
        ({}, 0),  # below the threshold
        ({"data_percent": 85.0}, 1),  # past it, no room
        ({"data_percent": 85.0, "extensions_left": 1}, 0),  # autoextend will fire
        ({"metadata_percent": 80.0, "data_percent": 90.0}, 2),
        ({"data_percent": 85.0, "autoextend_threshold": None, "autoextend_percent": None,
          "extensions_left": None}, 1),  # autoextend off: 80% stands in
        ({"data_percent": 70.0, "autoextend_threshold": None, "autoextend_percent": None,
          "extensions_left": None}, 0),
    ],
)  # fmt: skip
def test_pool_warnings(kw, warns):
    out = core.pool_warnings(entry(**kw))
    assert len(out) == warns
    for w in out:
        assert w.startswith("docker/thinpool ") and "add a device" in w


def test_status_check_exit_code(monkeypatch, capsys):
    from direct_lvm import cli, report

    full = [
        dataclasses.replace(
            entry(data_percent=90.0, monitor="monitored"),
            warnings=["docker/thinpool data is 90% full"],
        )
    ]
    monkeypatch.setattr(core, "status", lambda: full)
    monkeypatch.setattr(core, "volumes", lambda: [])  # docker-overlay2's LVs: none here
    # monitoring-plugins: past the threshold with no room is a WARNING
    assert cli.main(["status", "--json", "--check"]) == report.WARNING == 1
    assert cli.main(["status", "--json"]) == 0
    monkeypatch.setattr(core, "status", lambda: [dataclasses.replace(full[0], warnings=[])])
    assert cli.main(["status", "--json", "--check"]) == 0


def test_pv_pe_start_defaults_when_not_reported():
    assert PV("/dev/vdb", "u", "docker", 1, 1).pe_start == 1 << 20


def test_drop_in_written_but_not_reloaded_gets_the_reload_before_the_restart():
    """A run stopped between writing the drop-in and daemon-reload: the drop-in already
    matches, but systemd would restart docker from the old definition."""
    s = mkspec()
    files = core_files(s)
    stale = dataclasses.replace(docker(), need_reload=True)
    obs = make_observed(grown(s), {}, dict(files), stale, resolved={"/dev/vdb": "/dev/vdb"})
    assert argvs(plan(s, obs, files)) == [
        ("systemctl", "daemon-reload"),
        ("systemctl", "restart", "docker.service"),
    ]


def test_a_drop_in_systemd_has_not_loaded_is_stale():
    from direct_lvm.runtimes._systemd import dropins_stale

    ours = "/etc/systemd/system/docker.service.d/direct-lvm.conf"
    vendor = "/usr/lib/systemd/system/docker.service.d/x.conf"
    every_service = "/etc/systemd/system/service.d/y.conf"
    unit = "docker.service"
    assert dropins_stale(unit, "", [ours])  # written, never loaded (a new .d directory)
    assert dropins_stale(unit, ours, [])  # removed, still loaded
    assert not dropins_stale(unit, f"{vendor} {every_service} {ours}", [ours])
    assert not dropins_stale(unit, vendor, [])


def test_growth_alone_skips_the_version_gate_and_runtime_steps_do_not(monkeypatch, blank_disk):
    """The gate costs a process (dpkg-query): only a plan with runtime steps pays it, and
    then before any change (make_plan raises before execute)."""
    from direct_lvm import runtimes

    s = mkspec()
    gated = []
    plugin = runtimes.get(s.runtime)
    monkeypatch.setattr(plugin, "check_changes", lambda spec, state: gated.append(spec))
    monkeypatch.setattr(core, "observe", lambda spec, **k: observe(s, grown(s, dev_size=8 * GIB)))
    p, _ = core.make_plan(s)
    assert [st.argv[0] for st in p.steps] == ["pvresize", "lvextend"] and p.runtime_steps == 0
    assert gated == []
    # a first apply: LVM steps and the runtime's (its files, reload, restart): gated
    fresh = make_observed(LvmState(), {"/dev/vdb": blank_disk()}, {}, docker())
    monkeypatch.setattr(core, "observe", lambda spec, **k: (fresh, core_files(s)))
    p, _ = core.make_plan(s)
    assert p.runtime_steps >= 3 and gated == [s]
    refusal = RefusedError("docker 25", "fix")
    monkeypatch.setattr(plugin, "check_changes", lambda spec, state: (_ for _ in ()).throw(refusal))
    with pytest.raises(RefusedError):
        core.make_plan(s)
