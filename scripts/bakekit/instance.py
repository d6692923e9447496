"""Boot a baked image as a new instance under qemu: a throw-away qcow2 overlay on the
artifact, extra virtio disks (data disk, NoCloud seed, ...), user-mode networking with
the guest's ssh forwarded to a loopback port. No job disk: the instance is reached over
ssh, as a cloud instance is."""

from __future__ import annotations

import shlex
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from guestkit._proc import log, run, tail
from guestkit.vm import Disk, accel_args

from .bake import Artifact

QEMU = "qemu-system-x86_64"


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for qemu's ssh forward)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def qemu_argv(
    artifact: Artifact,
    root: Path,
    disks: Sequence[Disk],
    *,
    ssh_port: int,
    console_log: Path,
    mem_mb: int = 2048,
    smp: int = 2,
) -> list[str]:
    argv = [
        QEMU,
        "-name",
        f"direct-lvm-{artifact.environment}",
        *accel_args(),
        "-m",
        str(mem_mb),
        "-smp",
        str(smp),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        f"file:{console_log}",
    ]
    if artifact.kernel:
        argv += ["-kernel", str(artifact.kernel), "-append", artifact.append]
        if artifact.initrd:
            argv += ["-initrd", str(artifact.initrd)]
    argv += [
        "-drive",
        f"file={root},format=qcow2,if=none,id=root,discard=unmap",
        "-device",
        "virtio-blk-pci,drive=root",
    ]
    for i, disk in enumerate(disks, 1):
        drive = f"file={disk.path.resolve()},format={disk.format},if=none,id=disk{i}"
        device = f"virtio-blk-pci,drive=disk{i}" + (f",serial={disk.serial}" if disk.serial else "")
        argv += ["-drive", drive + (",readonly=on" if disk.readonly else ""), "-device", device]
    argv += [
        "-netdev",
        f"user,id=net0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
        "-device",
        "virtio-net-pci,netdev=net0",
        "-device",
        "virtio-rng-pci",
    ]
    return argv


class Instance:
    """A running instance of an artifact; a context manager that stops qemu on exit."""

    def __init__(self, artifact: Artifact, work: Path, disks: Sequence[Disk] = ()) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.work = work
        self.console_log = work / "console.log"
        self.ssh_port = free_port()
        root = work / "root.qcow2"
        run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "qcow2",
                "-b",
                artifact.disk.resolve(),
                root,
            ],
            capture=True,
        )
        argv = qemu_argv(
            artifact, root, disks, ssh_port=self.ssh_port, console_log=self.console_log
        )
        log(f"$ {shlex.join(argv)}")
        self._qemu_log = (work / "qemu.log").open("w")
        self.started = time.monotonic()
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._qemu_log, stderr=subprocess.STDOUT
        )

    def __enter__(self) -> Instance:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def running(self) -> bool:
        return self._proc.poll() is None

    def console_tail(self, lines: int = 60) -> str:
        return tail(self.console_log, lines)

    def wait_for_ssh(self, timeout: float = 900) -> float:
        """Poll until the guest's sshd answers with its banner; return the seconds since
        qemu started. (qemu accepts on the forwarded port before the guest listens, so
        a connect alone proves nothing.)"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(
                    f"qemu exited ({self._proc.returncode}) before ssh came up; "
                    f"console tail:\n{self.console_tail()}"
                )
            if _ssh_banner(self.ssh_port):
                log(f"ssh up on 127.0.0.1:{self.ssh_port} after {self.elapsed():.1f}s")
                return self.elapsed()
            time.sleep(1)
        raise TimeoutError(
            f"no ssh on 127.0.0.1:{self.ssh_port} within {timeout:.0f}s; "
            f"console tail:\n{self.console_tail()}"
        )

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._qemu_log.close()


def _ssh_banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.settimeout(10)
            return conn.recv(64).startswith(b"SSH-")
    except OSError:
        return False
