"""Shared by the suites of the runtimes whose root directory is a dedicated XFS LV
(containerd-overlayfs, podman): apply, what it ran, the mount and its size."""

import hashlib
import json
import re
from pathlib import Path

GIB = 1 << 30


def apply(host, config):
    return host.run(f"direct-lvm apply {config}")


def ran(stderr):
    """The commands apply ran (its `+ cmd` log lines): the command and its first word."""
    return re.findall(r"^.*\+ (\S+(?: \S+)?)", stderr, re.M)


def mount_of(host, path):
    """(source, fstype, size in bytes) of the filesystem mounted at exactly `path`."""
    out = host.run(f"findmnt --json --bytes -o SOURCE,FSTYPE,SIZE --mountpoint {path}")
    if out.rc != 0:
        return None
    (m,) = json.loads(out.stdout)["filesystems"]
    return m["source"], m["fstype"], int(m["size"])


def first_mib_sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(1 << 20)).hexdigest()


def busybox_rootfs(host, where="/tmp/bb-root"):
    """A directory holding busybox-static as /bin/busybox and /bin/sh (no registry)."""
    host.check_output(
        f"rm -rf {where} && mkdir -p {where}/bin && cp /bin/busybox {where}/bin/ && "
        f"ln -s busybox {where}/bin/sh"
    )
    return where


def backups(prefix):
    parent = Path(prefix).parent
    return sorted(str(p) for p in parent.iterdir() if p.name.startswith(Path(prefix).name))


def refused(r, *words):
    assert r.rc == 2, (r.rc, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)
