"""`direct-lvm reset`: the plan from observed state (pure), its refusals, containerd's
config.toml without our import, and the CLI's output and exit codes."""

import json
from pathlib import Path

import pytest
from obs import findmnt, state

from direct_lvm import OWNER_TAG, cli, core, reset, spec
from direct_lvm._compat import toml_loads
from direct_lvm.errors import ConfigError, RefusedError
from direct_lvm.plan import DEVICE_RECORD, Action
from direct_lvm.probe import LV, PV, VG, LvmState
from direct_lvm.runtimes import containerd_devmapper as containerd
from direct_lvm.runtimes._docker import DOCKER_DROPIN, DOCKER_ENV
from direct_lvm.runtimes._systemd import ServiceState
from direct_lvm.runtimes.docker_overlay2 import MOUNT_UNIT, MOUNT_UNIT_PATH

DATA = Path(__file__).parent / "data"
GIB = 1 << 30
EXT = 4 << 20
TAG = frozenset({OWNER_TAG})
EXEC = "/usr/sbin/dockerd -H fd:// $DOCKER_OPTS"
BACKUP = "/var/lib/docker.direct-lvm-backup-20261130T001500Z"
TS = "20261130T010000Z"


def mkspec(**kw):
    return spec.from_mapping({"devices": ["/dev/vdb", "/dev/vdc"], **kw})


def lv(vg, name, attr="twi-a-tz--", tags=TAG):
    return LV(vg, name, f"uuid-{name}", attr, GIB, 8 << 20, 0.0, 1.0, "", tags, "queue")


def ours_lvm(s, *, vg_tags=TAG, extra=()):
    name = s.lv if s.runtime is spec.Runtime.DOCKER_OVERLAY2 else s.pool
    attr = "-wi-ao----" if s.runtime is spec.Runtime.DOCKER_OVERLAY2 else "twi-a-tz--"
    return LvmState(
        pvs=(PV("/dev/vdb", "u1", s.vg, 4 * GIB, 4 * GIB - EXT),
             PV("/dev/vdc", "u2", s.vg, 4 * GIB, 4 * GIB - EXT),
             PV("/dev/vdf", "u3", "", 1 * GIB, 1 * GIB)),
        vgs=(VG(s.vg, "vg-uuid", 8 * GIB, GIB, EXT, 2046, 256, vg_tags),),
        lvs=(lv(s.vg, name, attr), lv(s.vg, "[lvol0_pmspare]", "ewi-------", frozenset()),
             lv(s.vg, f"[{name}_tdata]", "Twi-ao----", frozenset()), *extra),
    )  # fmt: skip


def our_files(s):
    docker = ServiceState("docker.service", True, (20, 10), "Docker 20.10", True, (), EXEC)
    files = dict(core.desired_files(s, state(docker)))
    files[core.LAST_APPLY] = json.dumps({"timestamp": 1.0, "success": True, "ref": s.ref})
    files[DEVICE_RECORD] = json.dumps({"/dev/vdb": {"vg": s.vg, "entry": "/dev/vdb"},
                                       "/dev/vdc": {"vg": s.vg, "entry": "/dev/vdc"}})  # fmt: skip
    return files


def observed(s, **kw):
    fields = dict(lvm=ours_lvm(s), files=our_files(s),
                  active_units=("docker.socket", "docker.service"), pool_state="/var/lib/docker",
                  backups=(BACKUP,), timestamp=TS)  # fmt: skip
    fields.update(kw)
    return reset.ResetObserved(**fields)


def argvs(rp):
    return [st.argv for st in rp.plan.steps]


def test_devicemapper_reset_undoes_everything_in_order_and_keeps_the_backup():
    s = mkspec()
    rp = reset.plan_reset(s, observed(s))
    assert argvs(rp) == [
        ("systemctl", "stop", "docker.socket", "docker.service"),
        ("mv", "--no-target-directory", "/var/lib/docker",
         f"/var/lib/docker.direct-lvm-backup-{TS}-reset"),
        ("lvremove", "--yes", "docker/thinpool"),  # hidden sub-LVs go with the pool
        ("vgremove", "--yes", "docker"),
        ("pvremove", "--yes", "/dev/vdb", "/dev/vdc"),  # not the orphan /dev/vdf
        ("wipefs", "--all", "/dev/vdb", "/dev/vdc"),
        ("rm", "-f", "--", "/etc/lvm/profile/docker-thinpool.profile"),  # after lvremove
        ("rm", "-f", "--", DOCKER_ENV),
        ("rm", "-f", "--", DOCKER_DROPIN),
        ("rm", "-f", "--", DEVICE_RECORD),
        ("rm", "-f", "--", core.LAST_APPLY),  # status --format prometheus's record
        ("systemctl", "daemon-reload"),
    ]  # fmt: skip
    assert all(st.reason for st in rp.plan.steps)
    assert rp.kept == (BACKUP,)
    assert not any(BACKUP in " ".join(a) for a in argvs(rp))  # never touched
    assert any(BACKUP in f and "kept" in f for f in rp.plan.facts)
    assert rp.stopped == ("docker.socket", "docker.service")
    assert rp.pvs == ("/dev/vdb", "/dev/vdc")
    assert rp.moved == (f"/var/lib/docker.direct-lvm-backup-{TS}-reset",)
    assert not any("next boot" in f for f in rp.plan.facts)
    rp = reset.plan_reset(s, observed(s, boot_config=True))
    assert any("/etc/direct-lvm/config.yaml exists" in f for f in rp.plan.facts)


def test_vg_without_our_tag_is_refused_even_with_force():
    s = mkspec()
    obs = observed(s, lvm=ours_lvm(s, vg_tags=frozenset()))
    for force in (False, True):
        with pytest.raises(RefusedError) as e:
            reset.plan_reset(s, obs, force=force)
        assert "'docker' has no 'direct_lvm' tag" in e.value.message
        assert "vgremove docker" in (e.value.hint or "")


def test_vg_with_someone_elses_lv_is_refused_naming_it_even_with_force():
    s = mkspec()
    obs = observed(s, lvm=ours_lvm(s, extra=(lv("docker", "data", "-wi-a-----", frozenset()),)))
    for force in (False, True):
        with pytest.raises(RefusedError) as e:
            reset.plan_reset(s, obs, force=force)
        assert "docker/data" in e.value.message and "did not make" in e.value.message


def test_containers_refuse_without_force_and_are_named():
    s = mkspec()
    obs = observed(s, containers=("c0ffee",), container_mounts=("/var/lib/docker/x",))
    with pytest.raises(RefusedError) as e:
        reset.plan_reset(s, obs)
    assert "c0ffee" in e.value.message and "mounted /var/lib/docker/x" in e.value.message
    assert "--force" in (e.value.hint or "")
    rp = reset.plan_reset(s, obs, yes=False)  # the plan only: a warning, not a refusal
    assert any("c0ffee" in n and "reset --yes refuses" in n for n in rp.plan.notes)
    rp = reset.plan_reset(s, obs, force=True)
    assert any("c0ffee" in n and "destroyed" in n for n in rp.plan.notes)
    assert ("vgremove", "--yes", "docker") in argvs(rp)


def test_nothing_left_plans_nothing():
    s = mkspec()
    rp = reset.plan_reset(s, reset.ResetObserved(lvm=LvmState(), backups=(BACKUP,)))
    assert rp.plan.empty and rp.kept == (BACKUP,)
    assert any("does not exist" in f for f in rp.plan.facts)
    lines = reset.text_lines(s, reset.ResetResult(rp, applied=False))
    assert any("nothing to do" in x for x in lines)
    assert any(BACKUP in x and "kept" in x for x in lines)


def test_files_not_written_for_this_config_are_left_alone():
    s = mkspec()
    other = mkspec(vg="other")
    files = {**our_files(other), DEVICE_RECORD: json.dumps({"/dev/vdx": {"vg": "other"}})}
    files[DOCKER_DROPIN] = "[Service]\nExecStart=\n"  # the admin's own
    rp = reset.plan_reset(s, observed(s, files=files))
    assert not [a for a in argvs(rp) if a[:1] == ("rm",)]
    assert all(st.action is Action.RUN for st in rp.plan.steps)  # the record is not rewritten
    assert any(DOCKER_DROPIN in f and "left as it is" in f for f in rp.plan.facts)


def test_the_static_dropin_stays_while_it_reads_another_configs_options():
    s = mkspec()
    other = mkspec(vg="other")
    files = {**our_files(s), DOCKER_ENV: our_files(other)[DOCKER_ENV]}
    rp = reset.plan_reset(s, observed(s, files=files))
    removed = [a[-1] for a in argvs(rp) if a[:1] == ("rm",)]
    assert DOCKER_DROPIN not in removed and DOCKER_ENV not in removed
    assert any(DOCKER_DROPIN in f and "another config's" in f for f in rp.plan.facts)
    rp = reset.plan_reset(s, observed(s, files={**files, DOCKER_ENV: None}))  # none: ours
    assert ("rm", "-f", "--", DOCKER_DROPIN) in argvs(rp)


def test_device_record_keeps_other_vgs_entries():
    s = mkspec()
    files = our_files(s)
    rec = {**json.loads(files[DEVICE_RECORD]), "/dev/vdx": {"vg": "other", "entry": "x"}}
    files[DEVICE_RECORD] = json.dumps(rec)
    rp = reset.plan_reset(s, observed(s, files=files))
    (write,) = [st for st in rp.plan.steps if st.action is Action.WRITE]
    assert write.path == DEVICE_RECORD
    assert json.loads(write.content) == {"/dev/vdx": {"vg": "other", "entry": "x"}}


def test_overlay2_unmounts_disables_and_removes_its_unit():
    s = mkspec(runtime="docker-overlay2", overlay2={"lv": "docker"})
    obs = observed(s, docker_root_ours=True, mount_enabled=True, pool_state="")
    rp = reset.plan_reset(s, obs)
    assert argvs(rp) == [
        ("systemctl", "stop", "docker.socket", "docker.service"),
        ("systemctl", "stop", MOUNT_UNIT),
        ("systemctl", "disable", MOUNT_UNIT),
        ("lvremove", "--yes", "docker/docker"),
        ("vgremove", "--yes", "docker"),
        ("pvremove", "--yes", "/dev/vdb", "/dev/vdc"),
        ("wipefs", "--all", "/dev/vdb", "/dev/vdc"),
        ("rm", "-f", "--", DOCKER_DROPIN),
        ("rm", "-f", "--", MOUNT_UNIT_PATH),
        ("rm", "-f", "--", DEVICE_RECORD),
        ("rm", "-f", "--", core.LAST_APPLY),
        ("systemctl", "daemon-reload"),
    ]


def ctd_files(s, config):
    main, version = containerd.main_config(config, (1, 6))
    return {
        "/etc/lvm/profile/docker-thinpool.profile": core.desired_files(s, None)[
            "/etc/lvm/profile/docker-thinpool.profile"],
        containerd.FRAGMENT: containerd.fragment(s, version),
        containerd.DROPIN: containerd.dropin(s),
        containerd.CONFIG: main,
    }  # fmt: skip


def test_containerd_distribution_config_gets_back_its_original_text():
    orig = (DATA / "containerd-config.toml-bookworm").read_text()
    s = mkspec(runtime="containerd-devmapper")
    table = ("docker-thinpool-snap-1: 0 2097152 thin 253:2 1\n"
             "docker-thinpool-snap-2: 0 2097152 thin 253:2 2\n"
             "docker-thinpool-tpool: 0 6684672 thin-pool 253:0 253:1 1024 0 1 skip_block_zeroing\n"
             "docker-other: 0 8 linear 8:16 2048\n")  # fmt: skip
    snaps = containerd.snap_devices(table, s.pool_dm_name)
    assert snaps == ("docker-thinpool-snap-1", "docker-thinpool-snap-2")
    obs = reset.ResetObserved(lvm=ours_lvm(s), files=ctd_files(s, orig),
                              active_units=("containerd.service",), snap_devices=snaps,
                              pool_state=s.options.root_path, timestamp=TS)  # fmt: skip
    rp = reset.plan_reset(s, obs)
    assert argvs(rp)[0] == ("systemctl", "stop", "containerd.service")
    assert argvs(rp)[1] == ("mv", "--no-target-directory", s.options.root_path,
                            f"{s.options.root_path}.direct-lvm-reset-{TS}")  # fmt: skip
    assert argvs(rp)[2] == ("dmsetup", "remove", "--retry", *snaps)
    assert argvs(rp)[3] == ("lvremove", "--yes", "docker/thinpool")
    (write,) = [st for st in rp.plan.steps if st.action is Action.WRITE]
    assert write.path == containerd.CONFIG and write.content == orig
    removed = {a[-1] for a in argvs(rp) if a[:1] == ("rm",)}
    assert removed == {containerd.FRAGMENT, containerd.DROPIN,
                       "/etc/lvm/profile/docker-thinpool.profile"}  # fmt: skip


def test_containerd_config_direct_lvm_wrote_is_removed_others_imports_kept():
    s = mkspec(runtime="containerd-devmapper")
    minimal, _ = containerd.main_config(None, (1, 6))
    assert containerd.without_import(minimal) is None
    rp = reset.plan_reset(s, reset.ResetObserved(lvm=LvmState(), files=ctd_files(s, None)))
    assert ("rm", "-f", "--", containerd.CONFIG) in argvs(rp)
    theirs = 'version = 2\nimports = ["/etc/a.toml"]\n[plugins]\n'
    added, _ = containerd.main_config(theirs, (1, 6))
    assert toml_loads(containerd.without_import(added)) == toml_loads(theirs)


def test_containerd_config_that_cannot_be_edited_safely_is_refused():
    text = f'version = 2\n"imports" = ["{containerd.FRAGMENT}"]\n'  # a quoted key: fine
    assert toml_loads(containerd.without_import(text)) == {"version": 2, "imports": []}
    with pytest.raises(ConfigError, match="imports is not a list"):
        containerd.without_import(f'version = 2\nimports = "{containerd.FRAGMENT}"\n')


def test_container_mounts_are_found_in_findmnts_output():
    info = findmnt(
        ("/", "/dev/vda1", "ext4", "8:1", "rw"),
        ("/var/lib/docker/overlay2/abc/merged", "overlay", "overlay", "0:40", "rw"),
        ("/var/lib/docker/devicemapper/mnt/def", "/dev/mapper/d", "xfs", "253:3", "rw"),
        ("/var/lib/docker/devicemapper", "/dev/vda1", "ext4", "253:3", "rw"),
    )
    assert reset.container_mounts(info) == (
        "/var/lib/docker/overlay2/abc/merged", "/var/lib/docker/devicemapper/mnt/def")  # fmt: skip


def _cfg(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("direct_lvm:\n  devices: [/dev/vdb, /dev/vdc]\n")
    return str(path)


def test_cli_prints_the_plan_and_changes_nothing_without_yes(tmp_path, monkeypatch, capsys):
    s = mkspec()
    monkeypatch.setattr(reset, "observe", lambda _s: observed(s))
    monkeypatch.setattr(reset, "execute", lambda *a, **k: pytest.fail("executed without --yes"))
    assert cli.main(["reset", _cfg(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "lvremove --yes docker/thinpool" in out and "wipefs --all /dev/vdb /dev/vdc" in out
    assert "nothing changed: run again with --yes" in out
    assert f"kept: {BACKUP}" in out
    assert "systemctl start docker.socket docker.service" in out
    assert cli.main(["reset", "--json", _cfg(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == 1 and doc["applied"] is False and doc["kept"] == [BACKUP]
    assert doc["steps"][0]["argv"] == ["systemctl", "stop", "docker.socket", "docker.service"]


def test_cli_refusal_exits_2_naming_the_fix(tmp_path, monkeypatch, capsys):
    s = mkspec()
    monkeypatch.setattr(reset, "observe", lambda _s: observed(s, containers=("c0ffee",)))
    monkeypatch.setattr(reset, "execute", lambda *a, **k: pytest.fail("executed on a refusal"))
    monkeypatch.setattr(reset, "exclusive", _no_lock)
    assert cli.main(["reset", "--yes", _cfg(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "c0ffee" in err and "--force" in err


def _no_lock():
    from contextlib import nullcontext

    return nullcontext()
