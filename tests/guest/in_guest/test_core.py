"""The core engine on real LVM: the project's own `direct-lvm apply` on a blank disk.

These tests run in order inside one guest boot; later ones build on earlier ones."""

import json
import re
import shlex

POOL = "docker/thinpool"


def test_plan_exit_code_says_changes_pending_before_the_first_apply(host, cfg):
    r = host.run(f"direct-lvm plan --exit-code {cfg('core')}")
    assert r.rc == 4, r.stdout + r.stderr
    assert "vgcreate --addtag direct_lvm docker /dev/vdb" in r.stdout
    r = host.run(f"direct-lvm plan --exit-code --json {cfg('core')}")
    assert r.rc == 4 and json.loads(r.stdout)["changes"] is True, r.stdout + r.stderr
    assert json.loads(r.stdout)["format"] == 1


def test_apply_on_blank_disk_creates_the_pool(host, cfg):
    r = host.run(f"direct-lvm -v apply {cfg('core')}")
    assert r.rc == 0, r.stderr
    assert "applied and verified" in r.stderr
    # the commands were logged in pasteable form
    assert re.search(r"^direct-lvm: \[ *\d+ ms\] \+ vgcreate --addtag direct_lvm docker /dev/vdb$",
                     r.stderr, re.M), r.stderr  # fmt: skip
    # issue 13: lvcreate (--yes: it asks nothing) and the verifying report ran in one lvm
    # shell; vgcreate (it may ask "Wipe it?") in a process of its own
    lines = [ln.split("] ", 1)[-1] for ln in r.stderr.splitlines()]
    ours = ("vgcreate", "lvcreate", "lvm")
    after = {ln.split()[1]: lines[i + 1] for i, ln in enumerate(lines[:-1])
             if ln.startswith("+ ") and ln.split()[1] in ours}  # fmt: skip
    assert "(in the lvm shell" not in after["vgcreate"], r.stderr
    assert after["lvcreate"].startswith("(in the lvm shell, pid "), r.stderr
    assert after["lvm"] == after["lvcreate"], r.stderr  # the same shell: the last fullreport


def test_pool_attributes(lvs):
    lv = lvs(POOL)
    assert lv["lv_attr"].startswith("t")
    assert int(lv["chunk_size"]) == 512 * 1024
    assert lv["zero"] == "0"
    assert lv["lv_profile"] == "docker-thinpool"
    assert lv["seg_monitor"] == "monitored"
    assert "direct_lvm" in lv["lv_tags"].split(",")


def test_vg_is_tagged_and_leaves_room_for_autoextend(host):
    vg = json.loads(host.check_output(
        "vgs --reportformat json --units b --nosuffix -o vg_tags,vg_size,vg_free docker"
    ))["report"][0]["vg"][0]  # fmt: skip
    assert "direct_lvm" in vg["vg_tags"].split(",")
    assert int(vg["vg_free"]) >= 0.16 * int(vg["vg_size"])  # one 20% step of an 80% pool


def test_profile_is_the_procedures(host):
    f = host.file("/etc/lvm/profile/docker-thinpool.profile")
    assert f.exists
    assert re.search(r"thin_pool_autoextend_threshold\s*=\s*80", f.content_string)
    assert re.search(r"thin_pool_autoextend_percent\s*=\s*20", f.content_string)
    # lvm itself reads the profile we attached
    out = host.check_output(
        "lvmconfig --type full --metadataprofile docker-thinpool "
        "activation/thin_pool_autoextend_threshold"
    )
    assert out.strip() == "thin_pool_autoextend_threshold=80"


def test_docker_uses_the_pool(host):
    assert host.service("docker").is_running
    info = host.check_output("docker info")
    assert re.search(r"^\s*Storage Driver: devicemapper$", info, re.M), info
    assert re.search(r"^\s*Pool Name: docker-thinpool$", info, re.M), info
    assert "loop" not in info.split("Storage Driver:")[1].split("Logging Driver")[0].lower()


def test_dropin_written_and_vendor_unit_untouched(host):
    # The storage options are in the EnvironmentFile the (static) drop-in reads, so a
    # baked drop-in needs no daemon-reload (issue 13); dockerd runs with each exactly once.
    dropin = host.file("/etc/systemd/system/docker.service.d/direct-lvm.conf").content_string
    env = host.file("/etc/direct-lvm/docker-storage.env").content_string
    assert "EnvironmentFile=-/etc/direct-lvm/docker-storage.env" in dropin
    assert " $DIRECT_LVM_DOCKER_STORAGE\n" in dropin
    pid = host.check_output("systemctl show -p MainPID --value docker.service")
    cmdline = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/cmdline").splitlines()
    for flag in ("--storage-driver=devicemapper",
                 "--storage-opt=dm.thinpooldev=/dev/mapper/docker-thinpool",
                 "--storage-opt=dm.use_deferred_removal=true",
                 "--storage-opt=dm.use_deferred_deletion=true"):  # fmt: skip
        assert flag in env
        assert cmdline.count(flag) == 1, cmdline
    # dpkg --verify prints a line for every packaged file whose checksum changed
    out = host.run("dpkg --verify docker.io")
    assert "docker.service" not in out.stdout
    assert host.run("systemd-analyze verify docker.service").rc == 0


def test_docker_run_on_the_pool(host, lvs):
    before = float(lvs(POOL, "data_percent")["data_percent"])
    host.check_output(
        "rm -rf /tmp/rootfs && mkdir -p /tmp/rootfs/bin && cp /bin/busybox /tmp/rootfs/bin/ && "
        "ln -s busybox /tmp/rootfs/bin/sh && tar -C /tmp/rootfs -c . | docker import - dl/busybox"
    )
    out = host.check_output("docker run --rm --network none dl/busybox sh -c 'echo hello-pool'")
    assert out.strip() == "hello-pool"
    after = float(lvs(POOL, "data_percent")["data_percent"])
    assert after > before  # the image and container were written into our pool
    # docker's thin devices live in our pool
    assert "docker-thinpool" in host.check_output("dmsetup ls --tree")


def test_second_apply_changes_nothing(host, cfg, lvs):
    uuid = lvs(POOL)["lv_uuid"]
    r = host.run(f"direct-lvm apply {cfg('core')}")
    assert r.rc == 0, r.stderr
    assert "nothing changed" in r.stderr
    assert not re.search(r"\+ (vgcreate|lvcreate|lvchange|pvcreate|wipefs|systemctl)", r.stderr)
    assert lvs(POOL)["lv_uuid"] == uuid


EARLY = "(started before the imports; no other run held the lock since)"


def test_a_converged_apply_uses_the_report_it_started_before_its_imports(host, cfg):
    """Issue 13: `direct-lvm apply` starts its first lvm fullreport before importing the
    engine (early.py); with the lock free and untouched since, that report is the
    probe's, and it is the run's only lvm process."""
    r = host.run(f"direct-lvm -v apply --no-restart {cfg('core')}")
    assert r.rc == 0 and "nothing changed" in r.stderr, r.stderr
    assert r.stderr.count("+ lvm ") == 1 and r.stderr.count(EARLY) == 1, r.stderr


# another run takes and lets go of the apply lock after the report started: the lock's
# generation changed, so the early report must be stopped and run again under the lock
RACE = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, format="%(message)s", stream=sys.stderr)
from direct_lvm import _lock, early
early.start_report()
with _lock.exclusive():
    pass
from direct_lvm import core, spec
result = core.apply(spec.load_file(sys.argv[1]), restart=core.RestartMode.NEVER)
print("empty" if result.plan.empty else "changed")
"""


def test_a_report_started_before_another_run_held_the_lock_is_not_used(host, cfg):
    r = host.run(f"python3 -c {shlex.quote(RACE)} {cfg('core')}")
    assert r.rc == 0 and r.stdout.strip() == "empty", r.stdout + r.stderr
    assert "another run held the lock since lvm started: stopped" in r.stderr, r.stderr
    assert EARLY not in r.stderr and r.stderr.count("+ lvm fullreport") == 1, r.stderr


# The same commands, each as a process and in one lvm shell: the same exit status, the
# same report, the same message; a question in the shell is answered "n" (as /dev/null).
SHELL_VS_PROCESS = """
import json, sys
from direct_lvm import run
cmds = [("lvs", "--reportformat", "json", "-o", "lv_name,lv_size", "docker"),
        ("lvs", "--reportformat", "json", "no_such_vg"),
        ("lvextend", "--extents", "+1", "no_such_vg/x")]
alone = [run.run(c, check=False) for c in cmds]
with run.lvm_shell():
    shell = run._SHELL[0]
    inside = [run.run(c, check=False) for c in cmds]
    asked = shell.run(("lvremove", "docker/dl_ask"), 120)
out = {"alone": [(p.returncode, p.stdout, p.stderr) for p in alone],
       "inside": [(p.returncode, p.stdout, p.stderr) for p in inside],
       "asked": (asked.returncode, asked.stderr)}
print(json.dumps(out))
"""


def test_the_lvm_shell_answers_as_separate_processes_do(host, lvs):
    host.check_output("lvcreate --yes -n dl_ask -L 8m docker")
    uuid = lvs("docker/dl_ask")["lv_uuid"]
    try:
        r = host.run(f"python3 -c {shlex.quote(SHELL_VS_PROCESS)}")
        assert r.rc == 0, r.stdout + r.stderr
        assert lvs("docker/dl_ask")["lv_uuid"] == uuid  # the answer was no
    finally:
        host.run("lvremove -y docker/dl_ask")
    out = json.loads(r.stdout)
    (rc0, out0, _), (rc1, _, err1), (rc2, _, err2) = out["alone"]
    (sc0, sout0, _), (sc1, _, serr1), (sc2, _, serr2) = out["inside"]
    assert (rc0, rc1, rc2) == (0, 5, 5) and (sc0, sc1, sc2) == (rc0, rc1, rc2), out
    assert json.loads(sout0)["report"] == json.loads(out0)["report"], out
    assert 'Volume group "no_such_vg" not found' in err1 and err1.strip() in serr1, out
    assert "no_such_vg" in err2 and "no_such_vg" in serr2, out
    code, said = out["asked"]  # lvremove asks "Do you really want to remove ...? [y/n]:"
    assert code != 0 and "[y/n]" in said, out
    assert host.run("pgrep -x lvm").rc == 1  # the shell is gone


def test_plan_on_converged_system_says_nothing_to_do(host, cfg):
    out = host.check_output(f"direct-lvm plan {cfg('core')}")
    assert "nothing to do: docker/thinpool matches the config" in out
    j = json.loads(host.check_output(f"direct-lvm plan --json {cfg('core')}"))
    assert j["changes"] is False and j["steps"] == []


PROFILE = "/etc/lvm/profile/docker-thinpool.profile"
RENDERED = "/var/lib/direct-lvm/rendered.json"


def _apply_importing(host, config):
    """apply under `python3 -X importtime`: (its result, the top-level packages imported)."""
    r = host.run(f"python3 -X importtime /usr/bin/direct-lvm apply {config}")
    assert r.rc == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("import time:")]
    assert lines, r.stderr  # importtime did report
    return r, {ln.rsplit("|", 1)[1].strip().split(".")[0] for ln in lines}


def test_converged_apply_renders_from_the_record_and_still_converges_changes(host, cfg):
    """Issue 13: a converged apply imports neither jinja2 nor jsonschema (the files come
    from the render record), nor PyYAML (the record holds the config text's parse; it is
    still validated) nor typing; a hand-edited profile is still put back, a changed
    config still renders afresh, and the original config comes back from the record."""
    assert host.file(RENDERED).exists  # kept by the applies above
    r, imported = _apply_importing(host, cfg("core"))
    assert "nothing changed" in r.stderr
    unused = ("jinja2", "jsonschema", "yaml", "typing")
    assert [m for m in unused if m in imported] == [], sorted(imported)
    before = host.file(PROFILE).content_string
    host.check_output(f"sed -i 's/threshold = 80/threshold = 95/' {PROFILE}")
    assert host.file(PROFILE).content_string != before
    r, imported = _apply_importing(host, cfg("core"))
    assert "nothing changed" not in r.stderr, r.stderr
    assert host.file(PROFILE).content_string == before  # the hand edit was undone
    assert "jinja2" not in imported, sorted(imported)
    changed = "/tmp/core-threshold-70.yaml"
    text = host.file(cfg("core")).content_string + "  autoextend: {threshold: 70}\n"
    host.check_output(f"printf %s {shlex.quote(text)} > {changed}")
    r, imported = _apply_importing(host, changed)
    assert "\tthin_pool_autoextend_threshold = 70\n" in host.file(PROFILE).content_string
    assert "jinja2" in imported and "yaml" in imported  # a new rendering, a new text
    r, imported = _apply_importing(host, cfg("core"))
    assert host.file(PROFILE).content_string == before
    assert "jinja2" not in imported, sorted(imported)


SEED = "from pathlib import Path; from direct_lvm import image; image.seed_render_record(Path('/'))"


def test_image_setups_record_answers_a_first_run_of_the_default_layout(host, cfg):
    """Issue 13: image-setup renders each thin-pool runtime's default layout into the
    render record (image.seed_render_record, here alone: the rest of image-setup would
    set this guest up for boots it does not have). A first run of that layout, on
    another disk name, renders nothing with jinja2; without the record it does."""
    host.check_output(f"rm -f {RENDERED}")
    r = host.run(f"direct-lvm -v plan {cfg('core')}")
    assert r.rc == 0 and "rendering lvm-profile.profile.j2 with jinja2" in r.stderr, r.stderr
    host.check_output(f"python3 -c {shlex.quote(SEED)}")
    r = host.run(f"direct-lvm -v plan {cfg('core')}")
    assert r.rc == 0 and "nothing to do" in r.stdout, r.stdout + r.stderr
    assert "with jinja2" not in r.stderr, r.stderr


def test_status_reports_the_pool(host):
    pools = json.loads(host.check_output("direct-lvm status --json"))["pools"]
    assert [(p["vg"], p["pool"]) for p in pools] == [("docker", "thinpool")]
    p = pools[0]
    assert p["monitor"] == "monitored" and p["profile"] == "docker-thinpool"
    assert p["chunk_size"] == 512 * 1024
    assert p["extensions_left"] >= 1
    assert "room for" in host.check_output("direct-lvm status")


def _sha(host, path):
    return host.check_output(f"sha256sum {path}").split()[0]


def test_ext4_disk_is_refused_and_untouched(host, cfg, facts):
    dev = "/dev/disk/by-id/virtio-dl-ext4"
    before = _sha(host, dev)
    r = host.run(f"direct-lvm apply {cfg('ext4')}")
    assert r.rc == 2, r.stderr
    assert "holds data signatures (ext4)" in r.stderr
    assert "wipe_signatures: true" in r.stderr  # the fix is named
    assert _sha(host, dev) == before
    assert host.run("vgs refused").rc != 0
    host.check_output(f"mkdir -p /mnt/ext4 && mount -o ro {dev} /mnt/ext4")
    try:
        assert _sha(host, "/mnt/ext4/precious.txt") == facts["precious_sha256"]
    finally:
        host.run("umount /mnt/ext4")


def test_a_signature_udev_has_not_seen_is_refused_and_untouched(host, cfg):
    """udev's probe (lsblk's FSTYPE) is all apply reads of a disk udev saw blank; an
    ext4 written while udev's queue is stopped is still refused: vgcreate's own check
    (asked on a closed stdin) says no, then wipefs names it. Nothing is written."""
    dev = host.check_output("readlink -f /dev/disk/by-id/virtio-dl-missed")
    host.check_output("udevadm control --stop-exec-queue")
    try:
        host.check_output(f"mkfs.ext4 -q -F -L missed {dev}")
        before = _sha(host, dev)
        assert host.check_output(f"lsblk -dno FSTYPE {dev}").strip() == ""  # udev missed it
        r = host.run(f"timeout 120 direct-lvm -v apply --no-restart {cfg('udev-missed')}")
    finally:
        host.run("udevadm control --start-exec-queue")
        host.run("udevadm settle --timeout=30")
    assert r.rc == 2, r.stderr
    assert f"+ vgcreate --addtag direct_lvm missed {dev}" in r.stderr  # the path under test
    assert "holds data signatures (ext4)" in r.stderr and "wipe_signatures: true" in r.stderr
    assert _sha(host, dev) == before
    assert host.run("vgs missed").rc != 0
    assert host.check_output(f"blkid -o value -s TYPE {dev}").strip() == "ext4"


def test_root_disk_is_refused(host, cfg):
    r = host.run(f"direct-lvm apply {cfg('rootdisk')}")
    assert r.rc == 2 and "root filesystem" in r.stderr, r.stderr


def test_missing_device_lists_what_was_seen(host, cfg):
    r = host.run(f"direct-lvm apply {cfg('missing')}")
    assert r.rc == 2, r.stderr
    assert "not found after waiting 2 s" in r.stderr and "/dev/vdb" in r.stderr
