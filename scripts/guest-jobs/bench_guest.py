"""The in-guest half of scripts/bench: one mode per boot (see scripts/bench.py).

Every measured command runs through measure(): wall seconds, exit code, the peak RSS of
the command's process tree (os.wait4's rusage: the largest process among the command and
the descendants it waited for) and how many LVM processes it started (the "+ lvm ..."
lines of `direct-lvm -v`, or of bash -x for the manual procedure). One JSON line per
measurement goes to out/results.jsonl, the command and its output to out/commands.log.
It asserts no timing; a command that should succeed and fails is recorded as failed (the
host then exits non-zero) and the boot's remaining measurements still run where they can.
Runs on the guest's python3 (bookworm: 3.11), stdlib only."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

JOB = Path(__file__).resolve().parent
OUT = Path(os.environ.get("DL_OUT", "/job/out"))
LOG = OUT / "commands.log"
RESULTS = OUT / "results.jsonl"
T0 = time.monotonic()
# One logged LVM process: direct-lvm -v prints "+ lvm fullreport ...", bash -x "+ pvcreate ..."
LVM_LINE = re.compile(r"(?:^|\s)\+ (?:lvm\w*|pv[a-z]+|vg[a-z]+|lv[a-z]+)(?:\s|$)", re.M)
# direct-lvm -v after a command that ran in its lvm shell (run.lvm_shell): one process
# for all the commands that name the same pid
SHELL_LINE = re.compile(r"\(in the lvm shell, pid (\d+)\)")
LVM_REPEAT, PY_REPEAT = 3, 2  # medians of these many runs
CI_DISK = "/dev/disk/by-id/virtio-benchci"  # the cloud-init boots' disk
CONFIG_FILE = "/etc/direct-lvm/config.yaml"  # direct-lvm.service's config


def progress(message: str) -> None:
    line = f"[bench guest {time.monotonic() - T0:6.1f}s] {message}"
    print(line, flush=True)
    with open("/dev/console", "w") as console:  # the host echoes these lines as progress
        print(line, file=console, flush=True)


def record(doc: dict[str, Any]) -> None:
    with RESULTS.open("a") as fh:
        fh.write(json.dumps(doc) + "\n")


def lvm_processes(text: str) -> tuple[int, int]:
    """(lvm processes, lvm commands) that a command's output logged."""
    commands = len(LVM_LINE.findall(text))
    pids = SHELL_LINE.findall(text)
    return commands - len(pids) + len(set(pids)), commands


def measure(label: str, argv: list[str], *, check: bool = True, quiet: bool = False,
            stdin: str | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as inp:
        if stdin is not None:
            inp.write(stdin.encode())
            inp.seek(0)
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdin=inp, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    processes, commands = lvm_processes(text)
    doc: dict[str, Any] = {
        "label": label, "seconds": round(seconds, 4), "rc": proc.returncode,
        "rss_kib": usage.ru_maxrss, "lvm": processes, "lvm_cmds": commands,
        "failed": check and proc.returncode != 0, "tail": text[-300:], **extra,
    }  # fmt: skip
    with LOG.open("a") as fh:
        head = f"{label}: {seconds:.3f} s, exit {proc.returncode}, {doc['lvm']} lvm"
        fh.write(f"\n### {head}, peak RSS {usage.ru_maxrss} KiB\n$ {shlex.join(argv)}\n")
        fh.write(text if text.endswith("\n") or not text else text + "\n")
    record(doc)
    if not quiet:
        flag = "  FAILED" if doc["failed"] else ""
        progress(f"{label}: {seconds:.2f} s, exit {proc.returncode}, {doc['lvm']} lvm{flag}")
    doc["output"] = text
    return doc


def sh(argv: list[str], check: bool = False) -> str:
    """A helper command (not measured), logged."""
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    text = proc.stdout.decode(errors="replace")
    with LOG.open("a") as fh:
        fh.write(f"\n### (helper) exit {proc.returncode}\n$ {shlex.join(argv)}\n{text}")
    if check and proc.returncode != 0:
        record({"label": f"helper: {shlex.join(argv)}", "failed": True, "rc": proc.returncode})
        raise RuntimeError(f"{shlex.join(argv)} exited {proc.returncode}: {text[-2000:]}")
    return text


def config(path: str, devices: list[str], vg: str, runtime: str | None = None,
           extra: tuple[str, ...] = ()) -> str:
    lines = ["direct_lvm:", f"  devices: [{', '.join(devices)}]", f"  vg: {vg}"]
    if runtime:
        lines.append(f"  runtime: {runtime}")
    lines += [f"  {line}" for line in extra]
    Path(path).write_text("\n".join(lines) + "\n")
    return path


def install() -> None:
    debs = sorted(str(p) for p in (JOB / "dist").glob("direct-lvm_*_all.deb"))
    env_argv = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q",
                "--no-install-recommends", *debs]  # fmt: skip
    if measure("setup: apt-get install the .deb", env_argv)["failed"]:
        raise RuntimeError("the .deb did not install")


# ---------------------------------------------------------------- boot 1: comparison
def direct_side(r: int, dev: str) -> None:
    cfg = config(f"/tmp/direct{r}.yaml", [dev], f"direct{r}")
    dl = ["direct-lvm", "-v"]
    measure(f"apply r{r}", [*dl, "apply", "--no-restart", cfg], group="compare", side="apply",
            round=r)  # fmt: skip
    measure(f"no-op r{r}", [*dl, "apply", "--no-restart", cfg], group="compare", side="noop",
            round=r)  # fmt: skip
    measure(f"plan r{r}", [*dl, "plan", cfg], group="compare", side="plan", round=r)
    measure(f"status r{r}", [*dl, "status"], group="compare", side="status", round=r)


def manual_side(r: int, dev: str) -> None:
    measure(f"manual r{r}", ["bash", str(JOB / "bench_manual.sh"), dev, f"manual{r}"],
            group="compare", side="manual", round=r)  # fmt: skip
    Path("/etc/systemd/system/docker.service.d/zz-manual-bench.conf").unlink(missing_ok=True)
    # untimed: systemd forgets the manual drop-in, or apply would find docker's unit
    # stale (NeedDaemonReload) and reload for it
    sh(["systemctl", "daemon-reload"])


def cleanup_round(r: int) -> None:
    """Both VGs of round r gone in one lvm process, and direct-lvm's files with them, so
    every round starts from the same blank state (each round has its own disks)."""
    sh(["vgremove", "-ff", "-y", f"manual{r}", f"direct{r}"])
    # image-setup's drop-ins stay (a baked image has them): docker's storage options go
    sh(["sh", "-c", "rm -rf /var/lib/direct-lvm /etc/direct-lvm/docker-storage.env "
        f"/etc/lvm/profile/manual{r}-* /etc/lvm/profile/direct{r}-*"])  # fmt: skip
    restore_baked_record()


# image-setup's render record (image.seed_render_record): a fresh instance of the baked
# image has it, so each round and row starts with it as image-setup left it
BAKED_RECORD = Path("/var/lib/direct-lvm/rendered.json")
BAKED_COPY = Path("/var/tmp/bench-baked-rendered.json")


def keep_baked_record() -> None:
    if BAKED_RECORD.exists():
        BAKED_COPY.write_bytes(BAKED_RECORD.read_bytes())


def restore_baked_record() -> None:
    if BAKED_COPY.exists():
        BAKED_RECORD.parent.mkdir(parents=True, exist_ok=True)
        BAKED_RECORD.write_bytes(BAKED_COPY.read_bytes())


IMPORT_CHILD_CLI = """
import sys
sys.stderr.write("DL-IMPORT-MARK\\n")
from direct_lvm.cli import main
sys.exit(main(sys.argv[1:]))
"""
# What cloud-init's own process has loaded before it runs a config module (its entry
# point's imports: cloudinit.util brings PyYAML, json, subprocess, logging ...) and the
# parsed cloud-config it hands to handle(): imported and parsed before the mark, so the
# modules counted are those the module adds to cloud-init's interpreter.
IMPORT_CHILD_MODULE = """
import sys
import cloudinit.cmd.main  # cloud-init's entry point, as loaded when a module runs
import yaml
cfg = yaml.safe_load(open(sys.argv[1]))
sys.stderr.write("DL-IMPORT-MARK\\n")
import cc_direct_lvm
from direct_lvm.bootpath import BY_MODULE, run_boot
sys.exit(run_boot(BY_MODULE, cfg, record="/tmp/bench-boot.json", lock="/tmp/bench-boot.lock"))
"""


def import_captures(r: int) -> None:
    """What a converged run imports, for the host's import budget (-X importtime)."""
    cfg = f"/tmp/direct{r}.yaml"
    for name, child, args in (
        ("cli", IMPORT_CHILD_CLI, ["apply", "--no-restart", cfg]),
        ("module", IMPORT_CHILD_MODULE, [cfg]),
    ):
        doc = measure(f"importtime: converged {name} path", ["python3", "-X", "importtime", "-c",
                      child, *args], group="guest-import", path=name)  # fmt: skip
        (OUT / f"importtime-{name}.txt").write_text(doc["output"])
    for name, argv in (
        ("python3 -c pass", ["python3", "-c", "pass"]),
        ("python3 -c 'import direct_lvm.cli'", ["python3", "-c", "import direct_lvm.cli"]),
        ("direct-lvm --version", ["direct-lvm", "--version"]),
    ):
        for i in range(PY_REPEAT):
            measure(f"python start: {name} #{i + 1}", argv, group="python", what=name,
                    quiet=i < PY_REPEAT - 1)  # fmt: skip


def lvm_micro(vdev: str) -> None:
    """Per lvm invocation: process start (lvm version scans nothing) vs device scanning,
    and a file of commands in one lvm process for the create and grow sequences."""
    runs: list[tuple[str, list[str]]] = [
        ("lvm version (start, no scan)", ["lvm", "version"]),
        ("pvs (scan all devices)", ["lvm", "pvs"]),
        ("pvs --devices one disk", ["lvm", "pvs", "--devices", vdev]),
        ("lvs (scan all devices)", ["lvm", "lvs"]),
        ("fullreport --reportformat json", ["lvm", "fullreport", "--reportformat", "json"]),
    ]
    for name, argv in runs:
        for i in range(LVM_REPEAT):
            measure(f"lvm: {name} #{i + 1}", argv, group="lvm", what=name,
                    quiet=i < LVM_REPEAT - 1)  # fmt: skip
    loops = []
    for i in range(4):
        img = f"/var/tmp/bench-loop{i}.img"
        sh(["truncate", "-s", "0", img])
        sh(["truncate", "-s", "2G", img])
        loops.append(sh(["losetup", "--show", "-f", img], check=True).strip())
    # create: the procedure's sequence, as separate processes and as one `lvm FILE`
    for how, (dev, vg) in (("separate", (loops[0], "mbsep")), ("one lvm", (loops[1], "mbone"))):
        lines = [
            f"pvcreate {dev}",
            f"vgcreate {vg} {dev}",
            f"lvcreate --wipesignatures y -n thinpool {vg} -l 80%VG",
            f"lvcreate --wipesignatures y -n thinpoolmeta {vg} -l 1%VG",
            f"lvconvert -y --zero n -c 512K --thinpool {vg}/thinpool "
            f"--poolmetadata {vg}/thinpoolmeta",
            f"lvchange --monitor y {vg}/thinpool",
        ]  # fmt: skip
        run_sequence("create", how, lines)
    # grow: each VG's disk grows by 1 GiB and gets a second disk
    for i, (how, vg) in enumerate((("separate", "mbsep"), ("one lvm", "mbone"))):
        img = f"/var/tmp/bench-loop{i}.img"
        sh(["truncate", "-s", "3G", img])
        sh(["losetup", "-c", loops[i]])
        lines = [
            f"pvresize {loops[i]}",
            f"vgextend {vg} {loops[i + 2]}",
            f"lvextend -l 80%VG {vg}/thinpool",
            f"lvextend --poolmetadatasize +4M {vg}/thinpool",
        ]
        run_sequence("grow", how, lines)
    # a failing line in the middle of a file: does lvm go on, what exit, does it say which?
    script = Path("/tmp/bench-fail.lvm")
    script.write_text("vgs mbsep\nvgs no_such_vg\nlvs mbone\n")
    doc = measure("lvm FILE with a failing 2nd line", ["lvm", str(script)], check=False,
                  group="lvm-script-failure")  # fmt: skip
    if "No such command" in doc["output"]:
        doc = measure("lvm shell with a failing 2nd line", ["lvm"], check=False,
                      stdin=script.read_text(), group="lvm-script-failure")  # fmt: skip
    record({"label": "lvm FILE failure behaviour", "group": "lvm-script-failure-detail",
            "rc": doc["rc"], "output": doc["output"][-1500:]})  # fmt: skip
    for vg in ("mbsep", "mbone"):
        sh(["vgremove", "-ff", "-y", vg])
    for dev in loops:
        sh(["losetup", "-d", dev])


def run_sequence(seq: str, how: str, lines: list[str]) -> None:
    """Separate processes, or all lines in one lvm process: `lvm FILE` as lvm(8) says,
    and where that build answers "No such command" (bookworm's 2.03.16 does), the lvm
    shell reading the same lines on stdin."""
    if how == "separate":
        script = "set -ex\n" + "\n".join(lines) + "\n"
        measure(f"lvm {seq}: {len(lines)} processes", ["bash", "-c", script],
                group="lvm-seq", seq=seq, how=how, commands=len(lines))  # fmt: skip
        return
    path = Path(f"/tmp/bench-{seq}.lvm")
    path.write_text("\n".join(lines) + "\n")
    doc = measure(f"lvm {seq}: `lvm FILE`", ["lvm", str(path)], check=False,
                  group="lvm-file", seq=seq, how="lvm FILE")  # fmt: skip
    if doc["rc"] != 0:
        measure(f"lvm {seq}: one lvm shell, commands on stdin", ["lvm"], stdin=path.read_text(),
                group="lvm-seq", seq=seq, how=how, commands=len(lines), mode="stdin")  # fmt: skip
    else:
        record({**{k: v for k, v in doc.items() if k != "output"}, "group": "lvm-seq",
                "how": how, "commands": len(lines), "mode": "file"})  # fmt: skip


def mode_compare() -> None:
    # apt's daily timers are persistent: in a later boot of this root they fired during the
    # measurements (apt-daily-upgrade: 27 s of CPU in the middle of the scale disks' udev
    # settle); a benchmark guest wants neither
    sh(["systemctl", "mask", "--now", "apt-daily.timer", "apt-daily-upgrade.timer"])
    install()
    # bake for boots 2-4 (cloud-init is disabled on this boot's kernel command line); no
    # locale-gen: cloud-init's locale module runs in the config stage, which is not timed
    measure("setup: direct-lvm image-setup", ["direct-lvm", "image-setup"])
    keep_baked_record()
    # untimed: what booting the baked image does, systemd loads the drop-in image-setup
    # baked (so a first apply writes only docker's storage options, no daemon-reload)
    sh(["systemctl", "daemon-reload"])
    rounds = int(os.environ.get("DL_BENCH_ROUNDS", "3"))
    pairs = [("/dev/vdb", "/dev/vdc"), ("/dev/vdd", "/dev/vde"), ("/dev/vdf", "/dev/vdg")]
    for r in range(1, rounds + 1):
        manual_dev, direct_dev = pairs[r - 1]
        progress(f"round {r}/{rounds}")
        if r % 2:  # rotating order: manual first in odd rounds, direct-lvm first in even
            manual_side(r, manual_dev)
            direct_side(r, direct_dev)
        else:
            direct_side(r, direct_dev)
            manual_side(r, manual_dev)
        if r < rounds:
            cleanup_round(r)
    if rounds:  # (rounds 0: only the install and the bake, a quick test of the later boots)
        import_captures(rounds)
        lvm_micro(pairs[0][0])
        cleanup_round(rounds)  # boot 2 must be a first boot: nothing left but the package
    sh(["cloud-init", "clean", "--logs"])


# ------------------------------------------------------------ boots 2 and 3: cloud-init
def wait_for(predicate: Any, timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def read_boot_record() -> dict[str, Any]:
    try:
        doc = json.loads(Path("/run/direct-lvm/boot.json").read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def unit_times(unit: str) -> dict[str, Any]:
    props = "InactiveExitTimestampMonotonic,ActiveEnterTimestampMonotonic,ActiveState,Result"
    text = sh(["systemctl", "show", unit, "-p", props])
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    start, end = int(values.get("InactiveExitTimestampMonotonic", 0) or 0), int(
        values.get("ActiveEnterTimestampMonotonic", 0) or 0)  # fmt: skip
    return {"unit": unit, "state": values.get("ActiveState"), "result": values.get("Result"),
            "seconds": (end - start) / 1e6 if start and end >= start else None}  # fmt: skip


def mode_cloudinit(boot: int) -> None:
    # The init stages (where the module runs) are done when cloud-init.service is; the
    # config and final stages (locale-gen, keys to the console) need not be waited for.
    def init_done() -> bool:
        state = sh(["systemctl", "show", "-p", "ActiveState", "cloud-init.service"])
        return "ActiveState=active" in state or "ActiveState=failed" in state

    ok = wait_for(init_done, 600)
    dump = sh(["cloud-init", "analyze", "dump"])
    (OUT / "analyze-dump.json").write_text(dump)
    for argv in (["cloud-init", "analyze", "show"], ["cloud-init", "analyze", "blame"],
                 ["cat", "/run/direct-lvm/boot.json"],
                 # where the module's time goes: its own stamped lines in cloud-init's log
                 ["grep", "-E", "direct.lvm|Running module direct_lvm", "/var/log/cloud-init.log"],
                 ):  # fmt: skip
        sh(argv)
    record_doc = read_boot_record()
    units = [unit_times(u) for u in ("cloud-init-local.service", "cloud-init.service")]
    record({"label": f"cloud-init boot {boot}", "group": "cloudinit", "boot": boot,
            "result_json": ok, "boot_record": record_doc, "units": units,
            "failed": not ok or not str(record_doc.get("result", "")).startswith("ok"),
            })  # fmt: skip
    progress(f"cloud-init boot {boot}: {record_doc.get('by')}: {record_doc.get('result')}")
    if boot == 2:
        unit_converged_run()
    if boot == 2 and os.environ.get("DL_BENCH_SCALE") == "1":
        # the scale rows ride on this boot (ci2) once its measurement is taken: its disks are
        # hot-plugged now, so they were not there for the boot measured above
        scale_rows()


def unit_converged_run() -> None:
    """What direct-lvm.service adds to a converged boot without cloud-init, in this boot
    (its measurement taken): the unit reads the file config, so the same config as the
    user-data goes there; this boot's record goes (else the unit says the module did the
    work), the unit is started and systemd gives its start-to-active seconds (udev
    settle, Python start and the converged check, as at boot)."""
    config(CONFIG_FILE, [CI_DISK], "docker")
    sh(["rm", "-f", "/run/direct-lvm/boot.json"])
    sh(["systemctl", "restart", "direct-lvm.service"])
    unit = unit_times("direct-lvm.service")
    boot_record = read_boot_record()
    sh(["journalctl", "-b", "-u", "direct-lvm.service", "-o", "short-monotonic"])
    record({"label": "direct-lvm.service, converged run", "group": "unit", **unit,
            "boot_record": boot_record,
            "failed": unit["seconds"] is None
            or not str(boot_record.get("result", "")).startswith("ok")})  # fmt: skip
    Path(CONFIG_FILE).unlink()
    progress(f"unit: {unit['seconds']} s, {boot_record.get('result')}")


# ------------------------------------------------- the scale rows (in ci2, after its measurement)
SCALE_ROWS = [
    ("1 x 4 GiB", [f"s{i:02d}" for i in range(1, 2)]),
    ("8 x 4 GiB", [f"s{i:02d}" for i in range(1, 9)]),
    ("32 x 4 GiB", [f"s{i:02d}" for i in range(1, 33)]),
    ("1 x 1 TiB", ["t1"]),
    ("1 x 64 TiB, zero_metadata: false", ["t64"]),
    ("1 x 64 TiB", ["t64"]),
]
# a row's config lines beyond devices and vg: lvm zeroes the whole metadata LV and its
# spare by default (6.5 GiB for 64 TiB); the row before the default one shows the pool
# created without that write
ROW_EXTRA = {"1 x 64 TiB, zero_metadata: false": ("zero_metadata: false",)}
# what a row leaves that the next row's first apply must not find: the records and docker's
# storage options (image-setup's static drop-in stays, as in a baked image: no
# daemon-reload, as on a real first boot)
ROW_FILES = ("/var/lib/direct-lvm", "/etc/direct-lvm/docker-storage.env")


STAMPED = re.compile(r"^direct-lvm: \[ *(\d+) ms\] (.*)$", re.M)


def command_seconds(output: str) -> dict[str, list[float]]:
    """From `direct-lvm -v`'s stamped lines: each command's seconds (until the next stamped
    line), by the command's name (`+ lvcreate ...` -> lvcreate)."""
    # "(in the lvm shell ...)" and "(started before ...)" say where the command above ran
    lines = [(int(ms), text) for ms, text in STAMPED.findall(output) if not text.startswith("(")]
    took: dict[str, list[float]] = {}
    for (ms, text), (next_ms, _) in zip(lines, lines[1:]):
        if text.startswith("+ ") and not text.startswith("+ write "):
            took.setdefault(text[2:].split()[0], []).append((next_ms - ms) / 1000)
    return took


def disks_by_serial() -> dict[str, str]:
    doc = json.loads(sh(["lsblk", "-J", "-d", "-o", "NAME,SERIAL"]))
    return {d["serial"]: f"/dev/{d['name']}" for d in doc["blockdevices"] if d.get("serial")}


def forget_row_files() -> None:
    for path in map(Path, ROW_FILES):
        if path.is_dir():
            sh(["rm", "-rf", str(path)])
        else:
            path.unlink(missing_ok=True)
    restore_baked_record()


def blank_again(vg: str, devices: list[str]) -> None:
    """The row's VG and PV labels gone in one lvm process (the lvm shell reads the lines on
    stdin), then a check that the disks are blank: the next row's apply would refuse them."""
    lines = f"vgremove -ff -y {vg}\npvremove -ff -y {' '.join(devices)}\n"
    proc = subprocess.run(["lvm"], input=lines.encode(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, check=False)  # fmt: skip
    with LOG.open("a") as fh:
        fh.write(f"\n### (helper) exit {proc.returncode}\n$ lvm <<'EOF'\n{lines}EOF\n"
                 f"{proc.stdout.decode(errors='replace')}")  # fmt: skip
    forget_row_files()


def scale_rows() -> None:
    """apply, no-op and status on 1, 8, 32 disks of 4 GiB and on one 1 TiB and one 64 TiB
    disk (sparse qcow2 on virtio-scsi, hot-plugged by the host when asked), one VG after
    another; then containerd's devmapper snapshotter on the last row's 64 TiB pool (kept:
    a new one would cost another lvcreate, 32 s under load, the kernel formatting the pool's
    space maps)."""
    # the boot's own pool (cloud-init's, on the virtio disk) goes first: docker has one pool
    sh(["vgremove", "-ff", "-y", "docker"])
    forget_row_files()
    wanted = {s for _, ss in SCALE_ROWS for s in ss}
    progress(f"asking the host for {len(wanted)} scsi disks")
    start = time.monotonic()
    with open("/dev/console", "w") as console:
        print("DL-BENCH-PLUG-DISKS", file=console, flush=True)
    if not wait_for(lambda: wanted <= set(disks_by_serial()), 600, every=2.0):
        missing = sorted(wanted - set(disks_by_serial()))
        record({"label": "scale disks", "failed": True, "missing": missing})
        raise RuntimeError(f"scale disks missing: {missing}")
    seen = time.monotonic() - start
    sh(["udevadm", "settle", "--timeout=300"])
    settled = time.monotonic() - start
    record({"label": "scale disks plugged", "group": "scale-plug", "disks": len(wanted),
            "seen_s": round(seen, 2), "settled_s": round(settled, 2)})  # fmt: skip
    serials = disks_by_serial()
    progress(f"{len(wanted)} scsi disks: in lsblk after {seen:.1f} s, udev settled {settled:.1f} s")
    dl = ["direct-lvm", "-v"]
    for n, (row, ss) in enumerate(SCALE_ROWS):
        vg = f"scale{n}"
        devices = [serials[s] for s in ss]
        cfg = config(f"/tmp/{vg}.yaml", devices, vg, extra=ROW_EXTRA.get(row, ()))
        progress(f"scale {row}")
        for what, argv in (("apply", [*dl, "apply", "--no-restart", cfg]),
                           ("noop", [*dl, "apply", "--no-restart", cfg]),
                           ("status", [*dl, "status"])):  # fmt: skip
            doc = measure(f"scale {row}: {what}", argv, group="scale", row=row, what=what,
                          disks=len(ss))  # fmt: skip
            if what == "apply":  # where a first apply's time goes, for the table
                took = command_seconds(doc["output"])
                record({"label": f"scale {row}: apply's commands", "group": "scale-steps",
                        "row": row, "took": took})  # fmt: skip
        report = sh(["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                     "lv_name,lv_size,lv_metadata_size,chunk_size,vg_size", vg])  # fmt: skip
        try:
            lvs = json.loads(report)["report"][0]["lv"]
        except (ValueError, KeyError, IndexError):
            lvs = []
        record({"label": f"scale {row}: pool", "group": "scale-pool", "row": row, "lvs": lvs,
                "failed": not lvs})  # fmt: skip
        if n < len(SCALE_ROWS) - 1:
            blank_again(vg, devices)
    forget_row_files()  # docker's options: containerd takes the 64 TiB pool over
    accept_64t(serials["t64"], f"scale{len(SCALE_ROWS) - 1}")


def mode_scale() -> None:
    """The scale rows in a boot of their own (`--skip cloudinit`: no boot 3 to ride on)."""
    scale_rows()


def accept_64t(dev: str, vg: str) -> None:
    """containerd's devmapper snapshotter on the 64 TiB pool (the last scale row's VG):
    direct-lvm's containerd runtime restarts containerd and checks `ctr plugins ls`; we
    check it again."""
    cfg = config("/tmp/ctr64.yaml", [dev], vg, runtime="containerd-devmapper")
    measure("64 TiB: apply containerd-devmapper (restarts containerd)",
            ["direct-lvm", "-v", "apply", cfg], group="accept")  # fmt: skip
    doc = measure("64 TiB: ctr plugins ls", ["ctr", "plugins", "ls"], group="accept")
    line = next((ln for ln in doc["output"].splitlines() if "devmapper" in ln), "")
    ok = line.split()[-1:] == ["ok"]
    record({"label": "64 TiB pool accepted by containerd devmapper", "group": "accept-verdict",
            "line": " ".join(line.split()), "failed": not ok})  # fmt: skip
    progress(f"containerd devmapper on 64 TiB: {' '.join(line.split()) or 'not listed'}")


def main() -> int:
    mode = sys.argv[1]
    OUT.mkdir(parents=True, exist_ok=True)
    progress(f"mode {mode}")
    try:
        if mode == "compare":
            mode_compare()
        elif mode in ("ci1", "ci2"):
            mode_cloudinit(int(mode[2:]))
        elif mode == "scale":
            mode_scale()
        else:
            raise SystemExit(f"unknown mode {mode}")
    except Exception as e:  # noqa: BLE001 - the host reads the record
        record({"label": f"boot aborted: {type(e).__name__}: {e}", "failed": True})
        progress(f"aborted: {e}")
        return 1
    progress("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
