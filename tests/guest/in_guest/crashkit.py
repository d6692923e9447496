"""Shared by the crash, growth and power-off in-guest suites and by poweroff.py (imported;
not a test module). Plain subprocess, so poweroff.py can use it outside pytest.

The state compared between an uninterrupted apply and an interrupted one is normalized:
LVM's report without uuids and usage percentages, the managed files, docker's driver and
pool, and the backups of docker's earlier storage (their names carry a timestamp)."""

import glob
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

from cloudinit_helpers import wait_for

CONFIGS = os.environ.get("DL_CONFIGS", "/job/configs")
DISKS = ("/dev/disk/by-id/virtio-dl-a", "/dev/disk/by-id/virtio-dl-b")
PRISTINE = "/var/lib/dl-pristine-docker"  # docker's overlay2 storage before any apply
PROFILE_GLOB = "/etc/lvm/profile/*.profile"
DROPIN = "/etc/systemd/system/docker.service.d/direct-lvm.conf"
ENV = "/etc/direct-lvm/docker-storage.env"  # the storage options the drop-in reads
BACKUPS = "/var/lib/docker.direct-lvm-backup-*"
RECORD = "/var/lib/direct-lvm/devices.json"  # which device each devices entry chose
SYSTEMD_VIEW = "systemctl show -p NeedDaemonReload -p DropInPaths docker.service"
CRASH_EXIT = 99
# docker's own thin devices (not LVs): docker-<major>:<minor>-<inode>-<id|base|pool>
DOCKER_DM = re.compile(r"^docker-\d+:\d+-\d+-")


def sh(cmd, check=True, env=None):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True,
                       env={**os.environ, **(env or {})})  # fmt: skip
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd!r} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def cfg(name):
    """A config of /job/configs by name, or a path."""
    return name if name.startswith("/") else f"{CONFIGS}/{name}.yaml"


def apply(name, *args, crash_after=None):
    """`direct-lvm apply`; returns the CompletedProcess (never raises)."""
    env = {"DIRECT_LVM_TEST_CRASH_AFTER_STEP": str(crash_after)} if crash_after else {}
    return sh(["direct-lvm", "apply", *args, cfg(name)], check=False, env=env)


def plan_steps(name, *args):
    out = sh(["direct-lvm", "plan", "--json", *args, cfg(name)]).stdout
    return json.loads(out)["steps"]


def docker_answers():
    return sh("docker info --format '{{.Driver}}'", check=False).returncode == 0


def import_busybox(tag):
    sh("rm -rf /tmp/rootfs && mkdir -p /tmp/rootfs/bin && cp /bin/busybox /tmp/rootfs/bin/ && "
       "ln -s busybox /tmp/rootfs/bin/sh && "
       f"tar -C /tmp/rootfs -c . | docker import - {tag}")  # fmt: skip


def snapshot_pristine_docker():
    """Once per guest: docker on overlay2 with an image, kept so every reset_system can put
    it back (then each apply is a takeover: stop docker, move its storage aside)."""
    if Path(PRISTINE).exists():
        return
    sh("systemctl start docker")
    wait_for(docker_answers, 120, "dockerd to answer")
    import_busybox("pristine/busybox")
    sh("systemctl stop docker.socket docker.service")
    sh(["cp", "-a", "/var/lib/docker", PRISTINE])
    sh("sync")


def _remove_docker_devices():
    names = sh("dmsetup ls").stdout.split("\n")
    for line in names:
        name = line.split("\t")[0].split(" ")[0]
        if DOCKER_DM.match(name):
            sh(["dmsetup", "remove", "--force", "--retry", name], check=False)


def reset_system(vg="docker", disks=DISKS, start_docker=True):
    """Back to a blank disk and docker on its pristine overlay2 storage."""
    sh("systemctl stop docker.socket docker.service", check=False)
    for mnt in sh("findmnt -rn -o TARGET", check=False).stdout.split():
        if mnt.startswith("/var/lib/docker"):
            sh(["umount", "-l", mnt], check=False)
    _remove_docker_devices()
    sh(["vgremove", "-ff", "-y", vg], check=False)
    for d in disks:
        real = os.path.realpath(d)
        sh(["pvremove", "-ff", "-y", real], check=False)
        sh(["wipefs", "-a", real], check=False)
    for f in [*glob.glob(PROFILE_GLOB), ENV, DROPIN, RECORD]:
        Path(f).unlink(missing_ok=True)
    sh("systemctl daemon-reload")
    sh(["rm", "-rf", "/var/lib/docker", *glob.glob(BACKUPS)])
    sh(["cp", "-a", PRISTINE, "/var/lib/docker"])
    if start_docker:
        sh("systemctl start docker")
        wait_for(docker_answers, 120, "dockerd to answer")


_DROP = re.compile(r"uuid|percent$")


def lvm_state(vg=None):
    from direct_lvm.probe import fullreport_argv

    doc = json.loads(sh(fullreport_argv()).stdout)
    out = []
    for rep in doc["report"]:
        if vg is not None and not any(v["vg_name"] == vg for v in rep.get("vg", [])):
            continue
        part = {}
        for kind in ("pv", "vg", "lv", "seg"):
            rows = [{k: v for k, v in r.items() if not _DROP.search(k)} for r in rep.get(kind, [])]
            part[kind] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
        out.append(part)
    return sorted(out, key=lambda r: json.dumps(r, sort_keys=True))


def state(vg=None, docker_state=True):
    """The normalized system state the comparisons are made on (LVM: only `vg` if given;
    docker's service and storage unless docker_state is false)."""
    files = {f: Path(f).read_text() for f in sorted(glob.glob(PROFILE_GLOB))}
    for f in (ENV, DROPIN, RECORD):
        files[f] = Path(f).read_text() if Path(f).exists() else None
    active = sh("systemctl is-active docker.service", check=False).stdout.strip()
    # only ask a running dockerd: `docker info` would socket-activate a stopped one
    info = sh("docker info --format '{{json .}}'", check=False) if active == "active" else None
    docker = None
    if info is not None and info.returncode == 0:
        d = json.loads(info.stdout)
        docker = {"driver": d.get("Driver"), "pool": dict(d.get("DriverStatus") or []).get(
            "Pool Name")}  # fmt: skip
    backups = [sorted(os.listdir(b)) for b in sorted(glob.glob(BACKUPS))]
    if not docker_state:
        return {"lvm": lvm_state(vg), "files": files}
    return {
        "lvm": lvm_state(vg),
        "files": files,
        "docker_active": active,
        # what systemd has loaded: a drop-in written but never loaded shows here
        "systemd_view": sh(SYSTEMD_VIEW).stdout,
        "docker": docker,
        "docker_root": sorted(os.listdir("/var/lib/docker"))
        if Path("/var/lib/docker").is_dir() else None,
        "backups": backups,
    }  # fmt: skip


def diff(a, b, path=""):
    """Human-readable differences between two states (empty when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in diff(a.get(k), b.get(k), f"{path}.{k}")]  # fmt: skip
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in diff(x, y, f"{path}[{i}]")]  # fmt: skip
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def log(msg):
    """To stdout (the test's captured output) and the console (seen live on the host)."""
    print(msg, flush=True)
    try:
        with open("/dev/console", "w") as console:
            for line in str(msg).splitlines():
                console.write(f"dl-test: {line[:900]}\n")
    except OSError:
        pass


def shell_line(argv):
    return shlex.join(argv)
