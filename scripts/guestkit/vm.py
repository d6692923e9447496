"""Boot a guest image under qemu, run a job in it and collect its verdict.

Disk layout seen by the guest:
  /dev/vda        root: a fresh qcow2 overlay on the image's root.raw (base never written)
  /dev/vdb, ...   `disks`, in order, virtio-blk with /dev/disk/by-id/virtio-<serial>
  /dev/sda        the DLJOB vfat job disk (on the q35 AHCI controller, so it never
                  shifts the vdX names; hot-plugged virtio disks get the next vdX)
  /dev/sdX        `disks` with scsi=True, on one virtio-scsi controller (no PCI slot
                  each, so dozens fit), by-id scsi-0QEMU_QEMU_HARDDISK_<serial>
"""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from ._proc import log, run, tail
from .jobdisk import copy_out, make_job_disk
from .model import GuestImage

QEMU = "qemu-system-x86_64"
HOTPLUG_PORTS = ("hotplug0", "hotplug1", "hotplug2", "hotplug3")
DEBUG_EXIT_IOBASE = 0xF4
VIRTIO_SERIAL_MAX = 20
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
JOB_START_MARKER = b"dl-job: starting job.sh"  # printed by the guest's dl-job-runner


@dataclass(frozen=True)
class Disk:
    """An extra virtio-blk disk (data disk, cidata seed, ...)."""

    path: Path
    serial: str | None = None
    format: str = "raw"
    readonly: bool = False
    nvme: bool = False  # an emulated NVMe controller (/dev/nvmeXn1) instead of virtio-blk
    scsi: bool = False  # a scsi-hd on the shared virtio-scsi controller instead of virtio-blk

    def __post_init__(self) -> None:
        if self.serial is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,20}", self.serial):
            raise ValueError(f"virtio-blk serial must be 1-{VIRTIO_SERIAL_MAX} chars "
                             f"[A-Za-z0-9_.-]: {self.serial!r}")


@dataclass(frozen=True)
class JobResult:
    """Outcome of one guest boot.

    verdict: the job's exit code (from out/rc, else from isa-debug-exit), or None
    when the guest never reported (timeout, crash, qemu error): see message.
    """

    verdict: int | None
    qemu_status: int | None
    duration_s: float
    out_dir: Path
    console_log: Path
    timed_out: bool = False
    job_start_s: float | None = None
    exit_port_value: int | None = None
    job_start_uptime_s: float | None = None
    job_end_uptime_s: float | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == 0

    def console_tail(self, lines: int = 40) -> str:
        return tail(self.console_log, lines)

    def died_before_job(self, crash: str, ours: str) -> bool:
        """The guest failed before its job started, with a console that matches the
        regex `crash` and not `ours` (a sign the job's own work had begun): the one
        boot a caller may retry, once. Any later failure is a result."""
        if self.verdict == 0 or self.job_start_s is not None:
            return False
        try:
            console = self.console_log.read_text(errors="replace")
        except FileNotFoundError:
            return False
        return bool(re.search(crash, console)) and not re.search(ours, console)

    def summary(self) -> str:
        parts = [f"verdict={self.verdict}", f"qemu_status={self.qemu_status}",
                 f"duration={self.duration_s:.1f}s"]
        if self.job_start_s is not None:
            parts.append(f"boot_to_job={self.job_start_s:.1f}s")
        if self.message:
            parts.append(self.message)
        return " ".join(parts)


def parse_size(size: int | str) -> int:
    """Bytes from an int or a string like '2G', '512M'."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"(\d+)([KMGT]?)i?B?", size.strip().upper())
    if not match:
        raise ValueError(f"bad size: {size!r}")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def blank_disk(path: Path, size: int | str) -> Path:
    """Create (or truncate to) a sparse raw disk file of the given size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.truncate(parse_size(size))
    return path


def qcow2_disk(path: Path, size: int | str) -> Path:
    """Create a qcow2 disk of the given virtual size: it costs nothing until written, so
    a 64 TiB disk fits on any host filesystem (a raw sparse file stops at ext4's 16 TiB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    run(["qemu-img", "create", "-q", "-f", "qcow2", path, str(parse_size(size))], capture=True)
    return path


def accel_args() -> list[str]:
    """KVM only with a real kvm_intel/kvm_amd module; otherwise multi-threaded TCG."""
    if any(Path(f"/sys/module/{m}").exists() for m in ("kvm_intel", "kvm_amd")):
        return ["-accel", "kvm", "-cpu", "host", "-machine", "q35"]
    return ["-accel", "tcg,thread=multi", "-cpu", "max", "-machine", "q35"]


def kernel_cmdline(extra: str = "") -> str:
    """Kernel command line; cloud-init is disabled unless extra selects a datasource.
    no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer check can miss
    the emulated timer's ticks and panic ("IO-APIC + timer doesn't work!") before init;
    virtual machines skip that check (cloud images set it too)."""
    args = ["root=LABEL=root", "rw", "console=ttyS0,115200", "panic=-1", "no_timer_check",
            "dl.job=1"]
    if not re.search(r"(^|\s)(ds=|cloud-init=)", extra):
        args.append("cloud-init=disabled")
    return " ".join([*args, *extra.split()])


def make_overlay(base: Path, overlay: Path) -> Path:
    """qcow2 overlay backed by base (opened read-only by qemu)."""
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base.resolve(), overlay],
        capture=True)
    return overlay


class _ConsoleTee(threading.Thread):
    """Copies qemu's serial output to console.log; notes when the job starts."""

    def __init__(self, stream: IO[bytes], path: Path, start: float) -> None:
        super().__init__(name="guestkit-console", daemon=True)
        self._stream = stream
        self._path = path
        self._start = start
        self.job_start_s: float | None = None

    def run(self) -> None:
        window = b""
        with self._path.open("ab") as fh:
            while chunk := self._stream.read1(65536):  # type: ignore[attr-defined]
                fh.write(chunk)
                fh.flush()
                if self.job_start_s is None:
                    window = (window + chunk)[-4096:]
                    if JOB_START_MARKER in window:
                        self.job_start_s = time.monotonic() - self._start


class RunningJob:
    """A booted guest; use as a context manager, then call wait()."""

    def __init__(self, argv: list[str], *, out_dir: Path, job_image: Path, timeout: float,
                 qmp_socket: Path | None, workdir: tempfile.TemporaryDirectory[str]) -> None:
        self.out_dir = out_dir
        self.console_log = out_dir / "console.log"
        self.qmp_socket = qmp_socket
        self._job_image = job_image
        self._timeout = timeout
        self._workdir = workdir
        self._result: JobResult | None = None
        log(f"$ {shlex.join(argv)}")
        self._qemu_log = out_dir / "qemu.log"
        self._qemu_log.write_text(shlex.join(argv) + "\n")
        self._start = time.monotonic()
        with self._qemu_log.open("a") as fh:
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=fh)
        assert self._proc.stdout is not None
        self._console = _ConsoleTee(self._proc.stdout, self.console_log, self._start)
        self._console.start()

    def __enter__(self) -> RunningJob:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._result is None:
            if exc_type is not None:
                self._kill()
            self.wait()

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def running(self) -> bool:
        return self._proc.poll() is None

    def wait_for_console(self, text: str, timeout: float | None = None) -> bool:
        """Poll console.log until it contains text; False if qemu exits or time runs out."""
        deadline = self._start + self._timeout if timeout is None else time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.console_log.read_text(errors="replace"):
                return True
            if not self.running():
                return False
            time.sleep(0.5)
        return False

    def wait(self) -> JobResult:
        """Wait for qemu (killing it at the timeout), copy out/ back, return the result."""
        if self._result is not None:
            return self._result
        timed_out = False
        try:
            self._proc.wait(timeout=max(0.0, self._timeout - self.elapsed()))
        except subprocess.TimeoutExpired:
            timed_out = True
            self._kill()
        duration = self.elapsed()
        self._console.join(timeout=10)
        try:
            copy_out(self._job_image, self.out_dir)
        finally:
            self._workdir.cleanup()
        self._result = _make_result(self._proc.returncode, duration, timed_out=timed_out,
                                    out_dir=self.out_dir, console_log=self.console_log,
                                    timeout=self._timeout, job_start_s=self._console.job_start_s)
        log(f"job finished: {self._result.summary()}")
        if self._result.verdict is None:
            log(f"guest did not report; console tail:\n{self._result.console_tail()}")
        return self._result

    def _kill(self) -> None:
        if self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _make_result(status: int, duration: float, *, timed_out: bool, out_dir: Path,
                 console_log: Path, timeout: float, job_start_s: float | None) -> JobResult:
    port = status >> 1 if status > 0 and status & 1 else None
    rc_file = _read_int(out_dir / "rc")
    timing = _read_timing(out_dir / "timing")
    verdict, message = _decide_verdict(status, port, rc_file, timed_out, timeout)
    return JobResult(verdict=verdict, qemu_status=status, duration_s=duration, out_dir=out_dir,
                     console_log=console_log, timed_out=timed_out, job_start_s=job_start_s,
                     exit_port_value=port,
                     job_start_uptime_s=timing.get("job_start_uptime"),
                     job_end_uptime_s=timing.get("job_end_uptime"), message=message)


def _decide_verdict(status: int, port: int | None, rc_file: int | None, timed_out: bool,
                    timeout: float) -> tuple[int | None, str]:
    if timed_out:
        note = "" if rc_file is None else f" (job had written rc={rc_file})"
        return rc_file, f"TIMEOUT: guest did not finish within {timeout:.0f}s, qemu killed{note}"
    if rc_file is not None:
        if port is not None and port != min(rc_file, 127):
            return rc_file, f"isa-debug-exit said {port} but out/rc says {rc_file}"
        return rc_file, ""
    if port:
        return port, "job reported through isa-debug-exit only (no out/rc)"
    if port == 0:
        return None, "qemu exited 1 with no job result: qemu start-up error? see qemu.log"
    return None, f"guest stopped without reporting a verdict (qemu status {status})"


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _read_timing(path: Path) -> dict[str, float]:
    timing: dict[str, float] = {}
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return timing
    for line in lines:
        key, _, value = line.partition("=")
        with contextlib.suppress(ValueError):
            timing[key.strip()] = float(value)
    return timing


def start_job(image: GuestImage, job_dir: Path, *, out_dir: Path, disks: Sequence[Disk] = (),
              timeout: float = 900, cmdline_extra: str = "", mem_mb: int = 2048, smp: int = 2,
              qmp: bool = False, root_overlay: Path | None = None,
              kernel: Path | None = None, scsi_controller: bool = False) -> RunningJob:
    """Boot image with job_dir on the DLJOB disk; returns without waiting.

    scsi_controller: a virtio-scsi controller even with no scsi Disk, for
    qmp.hotplug_scsi_disk later.

    root_overlay: keep the root qcow2 overlay at this path, reusing it if it exists
    (a second boot of the same root). Otherwise a throw-away overlay is used.
    kernel: override the image's preferred kernel (e.g. image.bzimage).
    """
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = tempfile.TemporaryDirectory(prefix="guestkit-")
    tmp = Path(workdir.name)
    try:
        job_image = make_job_disk(job_dir, tmp / "job.vfat")
        overlay = _prepare_overlay(image, root_overlay, tmp)
    except BaseException:
        workdir.cleanup()
        raise
    qmp_socket = _qmp_socket_path(out_dir, tmp) if qmp else None
    (out_dir / "console.log").write_bytes(b"")
    argv = [
        QEMU, "-name", f"guestkit-{image.dist}", *accel_args(),
        "-m", str(mem_mb), "-smp", str(smp),
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-nic", "none",
        "-kernel", str(kernel or image.kernel), "-initrd", str(image.initrd),
        "-append", kernel_cmdline(cmdline_extra),
        "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
        "-device", f"isa-debug-exit,iobase={DEBUG_EXIT_IOBASE:#x},iosize=0x04",
        "-device", "virtio-rng-pci",
        *_drive_args("root", overlay, "qcow2", serial="root"),
        *(["-device", "virtio-scsi-pci,id=scsi0"]
          if scsi_controller or any(d.scsi for d in disks) else []),
        *[a for i, d in enumerate(disks, 1) for a in _drive_args(
            f"disk{i}", d.path, d.format, serial=d.serial, readonly=d.readonly, nvme=d.nvme,
            scsi=d.scsi)],
        "-drive", f"file={job_image},format=raw,if=none,id=dljob",
        "-device", "ide-hd,drive=dljob,bus=ide.0,serial=DLJOB",
        *(_qmp_args(qmp_socket) if qmp_socket else []),
    ]
    return RunningJob(argv, out_dir=out_dir, job_image=job_image, timeout=timeout,
                      qmp_socket=qmp_socket, workdir=workdir)


def run_job(image: GuestImage, job_dir: Path, *, out_dir: Path, disks: Sequence[Disk] = (),
            timeout: float = 900, cmdline_extra: str = "", mem_mb: int = 2048, smp: int = 2,
            qmp: bool = False, root_overlay: Path | None = None,
            kernel: Path | None = None) -> JobResult:
    """Boot, run job_dir/job.sh in the guest, wait for the verdict. See start_job."""
    with start_job(image, job_dir, out_dir=out_dir, disks=disks, timeout=timeout,
                   cmdline_extra=cmdline_extra, mem_mb=mem_mb, smp=smp, qmp=qmp,
                   root_overlay=root_overlay, kernel=kernel) as job:
        return job.wait()


def _prepare_overlay(image: GuestImage, root_overlay: Path | None, tmp: Path) -> Path:
    if root_overlay is None:
        return make_overlay(image.root, tmp / "root.qcow2")
    if root_overlay.exists():
        log(f"reusing root overlay {root_overlay}")
        return root_overlay.resolve()
    root_overlay.parent.mkdir(parents=True, exist_ok=True)
    return make_overlay(image.root, root_overlay).resolve()


def _drive_args(drive_id: str, path: Path, fmt: str, *, serial: str | None = None,
                readonly: bool = False, nvme: bool = False, scsi: bool = False) -> list[str]:
    drive = f"file={path.resolve()},format={fmt},if=none,id={drive_id},discard=unmap"
    if readonly:
        drive += ",readonly=on"
    if scsi:
        device = f"scsi-hd,drive={drive_id},bus=scsi0.0"
    else:
        device = f"{'nvme' if nvme else 'virtio-blk-pci'},drive={drive_id}"
    if nvme and not serial:
        serial = drive_id  # qemu's nvme device needs a serial
    if serial:
        device += f",serial={serial}"
    return ["-drive", drive, "-device", device]


def _qmp_socket_path(out_dir: Path, tmp: Path) -> Path:
    preferred = out_dir / "qmp.sock"
    if len(str(preferred)) <= _SOCKET_PATH_MAX:
        preferred.unlink(missing_ok=True)
        return preferred
    return tmp / "qmp.sock"  # out_dir path too long for a unix socket


def _qmp_args(sock: Path) -> list[str]:
    args = ["-qmp", f"unix:{sock},server=on,wait=off"]
    for chassis, port in enumerate(HOTPLUG_PORTS, start=1):
        args += ["-device", f"pcie-root-port,id={port},bus=pcie.0,chassis={chassis}"]
    return args
