"""Device selection, refusals and late disks on real devices (one guest boot).

Disks (tests/guest/test_guest_devices.py; prep.sh puts them in their state):
  vda root | vdb dl-ext4 (ext4 + a file) | vdc dl-gpt (GPT, one partition) |
  vdd dl-foreign (PV of VG foreign) | vde dl-mounted (ext4, mounted ro) |
  vdf dl-swap (swap signature) | vdg dl-data (2G blank) | vdh dl-small (32M blank) |
  vdi dl-twin1, vdj dl-twin2 (96M blank each) | vdk dl-ro (read-only) |
  vdl dl-stale (128M of 0xab bytes: old data without a signature) |
  nvme0n1 dl-nvme (emulated NVMe) | sda the job disk (mounted at /job)
  dl-late: hot-plugged by the host once apply prints that it is still waiting for it.

Every refused case runs `direct-lvm apply` and asserts exit 2, the message, and that
the sha256 of each device it names is the same before and after."""

import json
import os
import subprocess
import time

import pytest

BY_ID = "/dev/disk/by-id/virtio-"

# case -> (config lines, devices to hash before/after, what the message must say)
CASES = {
    "signature-ext4-by-id-path": (
        "devices: [/dev/disk/by-id/virtio-dl-ext4]",
        ["dl-ext4"],
        ["/dev/disk/by-id/virtio-dl-ext4 (/dev/vdb) holds data signatures (ext4)",
         "fix: list a blank device, or set wipe_signatures: true"],
    ),
    "signature-swap-by-serial": (
        "devices: [{serial: dl-swap}]",
        ["dl-swap"],
        ["serial=dl-swap (/dev/vdf) holds data signatures (swap)", "fix:"],
    ),
    "partitioned-gpt": (
        "devices: [/dev/disk/by-id/virtio-dl-gpt]",
        ["dl-gpt"],
        ["virtio-dl-gpt (/dev/vdc) has partitions: /dev/vdc1", "fix: list an unused device"],
    ),
    "partitioned-gpt-even-with-wipe_signatures": (
        "devices: [/dev/vdc]\nwipe_signatures: true",
        ["dl-gpt"],
        ["/dev/vdc has partitions: /dev/vdc1", "fix:"],
    ),
    "pv-of-a-foreign-vg": (
        "devices: [{id: virtio-dl-foreign}]",
        ["dl-foreign"],
        ["is a physical volume of the volume group 'foreign'", "fix: list another device"],
    ),
    "pv-of-a-foreign-vg-even-with-wipe_signatures": (
        "devices: [/dev/disk/by-id/virtio-dl-foreign]\nwipe_signatures: true",
        ["dl-foreign"],
        ["physical volume of the volume group 'foreign'", "fix:"],
    ),
    "mounted": (
        "devices: [/dev/disk/by-id/virtio-dl-mounted]",
        ["dl-mounted"],
        ["(/dev/vde) is mounted at /mnt/mounted", "fix: unmount it"],
    ),
    "mounted-even-with-wipe_signatures": (
        "devices: [{serial: dl-mounted}]\nwipe_signatures: true",
        ["dl-mounted"],
        ["serial=dl-mounted (/dev/vde) is mounted at /mnt/mounted", "fix:"],
    ),
    "root-disk": (
        "devices: [/dev/vda]",
        [],  # mounted read-write: its bytes change on their own; asserted: no PV appeared
        ["/dev/vda is the disk that holds the root filesystem", "fix: list a spare data disk"],
    ),
    "root-disk-by-serial": (
        "devices: [{serial: root}]",
        [],
        ["serial=root (/dev/vda) is the disk that holds the root filesystem", "fix:"],
    ),
    "read-only": (
        "devices: [{serial: dl-ro}]",
        ["dl-ro"],
        ["serial=dl-ro (/dev/vdk) is read-only", "fix: attach the volume read-write"],
    ),
    "too-small-for-a-pool": (
        "devices: [{serial: dl-small}]",
        ["dl-small"],
        ["devices serial=dl-small: the pool data would be", "below the minimum of 64 MiB",
         "fix: use a larger device"],
    ),
    "first_empty-picks-the-small-disk-and-refuses-it": (
        "devices: [{first_empty: true, max_size: 100M}]",
        ["dl-small"],
        ["devices max_size=100M,first_empty: the pool data would be", "fix:"],
    ),
    "data-plus-metadata-over-100-percent": (
        "devices: [{serial: dl-twin1}]\ndata_percent: 100",
        ["dl-twin1"],
        ["data_percent 100", "plus metadata", "exceed the", "fix: lower data_percent"],
    ),
    "metadata-larger-than-the-disk": (
        "devices: [{serial: dl-twin2}]\nmetadata_size: 1G",
        ["dl-twin2"],
        ["metadata 1.00 GiB", "exceed the", "fix: lower data_percent or metadata_size"],
    ),
    "selector-matches-two-disks": (
        "devices: [{size: 96M}]",
        ["dl-twin1", "dl-twin2"],
        ["devices entry size=96M matches 2 disks", "/dev/vdi (96.00 MiB, serial dl-twin1)",
         "/dev/vdj (96.00 MiB, serial dl-twin2)", "fix: make the entry match one disk"],
    ),
    "same-disk-twice": (
        "devices: [/dev/vdi, /dev/disk/by-id/virtio-dl-twin1]",
        ["dl-twin1"],
        ["/dev/vdi and /dev/disk/by-id/virtio-dl-twin1 are the same disk (/dev/vdi)",
         "fix: list each disk once"],
    ),
    "selector-matches-nothing": (
        "devices: [{serial: dl-absent}]\nwait_timeout: 2",
        ["dl-small"],
        ["not found after waiting 2 s: serial=dl-absent", "block devices seen:",
         "/dev/vdg (2.00 GiB disk, serial dl-data)", "or raise wait_timeout"],
    ),
    "no-empty-disk-large-enough": (
        "devices: [{first_empty: true, min_size: 1T}]\nwait_timeout: 1",
        ["dl-small"],
        ["not found after waiting 1 s: min_size=1T,first_empty", "fix:"],
    ),
    "missing-path": (
        "devices: [/dev/disk/by-id/virtio-not-attached]\nwait_timeout: 2",
        [],
        ["not found after waiting 2 s: /dev/disk/by-id/virtio-not-attached",
         "/dev/vdb (64.00 MiB disk, serial dl-ext4, ext4)"],
    ),
}  # fmt: skip


def sha(serial):
    path = f"{BY_ID}{serial}"
    out = subprocess.run(["sha256sum", path], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def write_config(name, body):
    path = f"/tmp/dl-{name}.yaml"
    with open(path, "w") as f:
        f.write(f"direct_lvm:\n  {body.replace(chr(10), chr(10) + '  ')}\n")
    return path


def apply(config, *args):
    return subprocess.run(["direct-lvm", "apply", "--no-restart", *args, config],
                          capture_output=True, text=True)  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_refused(case):
    body, disks, needles = CASES[case]
    config = write_config(case, body + "\nvg: refused")
    before = {d: sha(d) for d in disks}
    r = apply(config)
    assert r.returncode == 2, r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr
    assert {d: sha(d) for d in disks} == before
    assert subprocess.run(["vgs", "refused"], capture_output=True).returncode != 0
    # nothing ran that changes anything (changing commands are logged as "+ ...")
    assert "\ndirect-lvm: + " not in "\n" + r.stderr, r.stderr


def test_root_disk_got_no_pv():
    out = subprocess.run(["pvs", "--reportformat", "json", "-o", "pv_name"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    names = [p["pv_name"] for p in json.loads(out)["report"][0]["pv"]]
    assert names == ["/dev/vdd"]  # only prep's foreign PV


# ------------------------------------------------------------------ choosing


def test_plan_says_which_disk_first_empty_chose_and_why():
    config = write_config("fe", "devices: [{first_empty: true}]\nvg: fe")
    r = subprocess.run(["direct-lvm", "plan", "--no-restart", config], capture_output=True,
                       text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    fact = next(line for line in r.stdout.splitlines() if line.startswith("# device first_empty"))
    assert fact.startswith(
        "# device first_empty -> /dev/vdg: 2.00 GiB disk, serial dl-data, blank; chosen as "
        "the first empty whole disk in name order; skipped "
    ), fact
    skipped = [
        "/dev/sda mounted at /job", "/dev/vda holds the root filesystem",
        "/dev/vdb has a ext4 signature", "/dev/vdc has a gpt partition table (/dev/vdc1)",
        "/dev/vdd a PV of VG foreign", "/dev/vde mounted at /mnt/mounted",
        "/dev/vdf has a swap signature",
    ]  # fmt: skip
    for why in skipped:
        assert why in fact, fact
    assert "vgcreate --addtag direct_lvm fe /dev/vdg" in r.stdout


def test_apply_first_empty_takes_that_disk():
    r = apply("/tmp/dl-fe.yaml")
    assert r.returncode == 0, r.stderr
    assert "+ vgcreate --addtag direct_lvm fe /dev/vdg" in r.stderr
    assert os.path.realpath(f"{BY_ID}dl-data") == "/dev/vdg"


def test_status_shows_the_pv_identity_and_why():
    pools = json.loads(subprocess.check_output(["direct-lvm", "status", "--json"]))["pools"]
    (fe,) = [p for p in pools if p["vg"] == "fe"]
    (pv,) = fe["pvs"]
    assert pv["device"] == "/dev/vdg" and pv["serial"] == "dl-data" and pv["size"] == 2 << 30
    assert f"{BY_ID}dl-data" in pv["by_id"]
    assert pv["entry"] == "first_empty"
    assert pv["reason"].startswith("the first empty whole disk in name order; skipped")
    text = subprocess.check_output(["direct-lvm", "status"], text=True)
    assert "PV /dev/vdg: 2.00 GiB, serial dl-data, /dev/disk/by-id/virtio-dl-data; chosen by " \
           "devices entry first_empty: the first empty whole disk" in text, text  # fmt: skip


def test_second_apply_keeps_the_disk_though_other_empty_disks_exist():
    small = sha("dl-small")
    r = apply("/tmp/dl-fe.yaml")
    assert r.returncode == 0, r.stderr
    assert "nothing changed" in r.stderr, r.stderr
    out = subprocess.check_output(["direct-lvm", "plan", "--no-restart", "/tmp/dl-fe.yaml"],
                                  text=True)  # fmt: skip
    assert "# device first_empty -> /dev/vdg: already a PV of VG fe" in out
    assert sha("dl-small") == small


def test_nvme_disk_by_serial():
    config = write_config("nv", "devices: [{serial: dl-nvme}]\nvg: nv")
    r = apply(config)
    assert r.returncode == 0, r.stderr
    assert "+ vgcreate --addtag direct_lvm nv /dev/nvme0n1" in r.stderr, r.stderr
    out = subprocess.check_output(["direct-lvm", "plan", "--no-restart", config], text=True)
    assert "# device serial=dl-nvme -> /dev/nvme0n1: already a PV of VG nv" in out


# ------------------------------------------------------------------ late disks


def test_hotplugged_disk_is_waited_for():
    """The host hot-plugs dl-late (QMP device_add) when it sees the progress line below on
    the console; apply must wait for it, say so, and build the pool on it."""
    assert not os.path.exists(f"{BY_ID}dl-late")
    config = write_config("late", "devices: [{serial: dl-late}]\nvg: late\nwait_timeout: 300")
    start = time.monotonic()
    proc = subprocess.Popen(["direct-lvm", "apply", "--no-restart", config],
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines = []
    with open("/dev/console", "w") as console:
        for line in proc.stderr:
            lines.append(line)
            console.write(f"dl-late-apply: {line}")
            console.flush()
    rc = proc.wait()
    err = "".join(lines)
    assert rc == 0, err
    assert "waiting up to 300 s for serial=dl-late" in err
    assert "still waiting for serial=dl-late" in err  # a progress line before the disk came
    late = os.path.realpath(f"{BY_ID}dl-late")
    assert f"found serial=dl-late -> {late} after " in err
    assert f"+ vgcreate --addtag direct_lvm late {late}" in err
    pvs = json.loads(subprocess.check_output(
        ["pvs", "--reportformat", "json", "-o", "pv_name", "-S", "vg_name=late"]))  # fmt: skip
    assert [p["pv_name"] for p in pvs["report"][0]["pv"]] == [late]
    lv = subprocess.run(["lvs", "late/thinpool"], capture_output=True)
    assert lv.returncode == 0
    print(f"apply took {time.monotonic() - start:.1f} s including the wait")


# ------------------------------------------------------------------ zero_metadata


def test_zero_metadata_false_zeroes_only_the_metadata_header():
    """dl-stale holds 0xab bytes and no signature (prep), so it is accepted. With
    zero_metadata: false lvm zeroes only the first 4 KiB of the new metadata LV: its
    tail still holds the disk's old bytes. With the default (lvm's allocation/
    zero_metadata) the whole metadata LV reads as zeros. Each pool works: a second
    apply changes nothing."""
    dev = os.path.realpath(f"{BY_ID}dl-stale")
    tails = {}
    for n, zero_metadata in enumerate(("false", "true")):
        vg = f"stale{n}"
        config = write_config(vg, f"devices: [{{serial: dl-stale}}]\nvg: {vg}\n"
                                  f"zero_metadata: {zero_metadata}")  # fmt: skip
        r = apply(config)
        assert r.returncode == 0, r.stderr
        asked = "--config allocation/zero_metadata=0" in r.stderr
        assert asked == (zero_metadata == "false"), r.stderr
        with open(f"/dev/mapper/{vg}-thinpool_tmeta", "rb") as f:
            f.seek(-65536, os.SEEK_END)
            tails[zero_metadata] = f.read()
        again = apply(config)
        assert again.returncode == 0 and "nothing changed" in again.stderr, again.stderr
        for argv in (["vgremove", "-ff", "-y", vg], ["pvremove", "-ff", "-y", dev]):
            subprocess.run(argv, check=True, capture_output=True)
    assert tails["false"] == b"\xab" * 65536
    assert tails["true"] == bytes(65536)
