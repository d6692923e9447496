"""Minimal QMP client (stdlib socket + json) and a virtio-blk hot-plug helper."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from ._proc import log


class QMPError(RuntimeError):
    """qemu answered a QMP command with an error."""


def qmp_command(sock: Path, cmd: str, args: dict[str, Any] | None = None, *,
                timeout: float = 30.0) -> Any:
    """Connect to a QMP unix socket, negotiate capabilities, run one command.

    Returns the command's "return" value; raises QMPError on an "error" reply.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(sock))
        stream = conn.makefile("rwb")
        greeting = _read_message(stream)
        if "QMP" not in greeting:
            raise QMPError(f"unexpected QMP greeting: {greeting}")
        _execute(stream, "qmp_capabilities", None)
        log(f"qmp {cmd} {json.dumps(args or {})}")
        return _execute(stream, cmd, args)


def _execute(stream: Any, cmd: str, args: dict[str, Any] | None) -> Any:
    request: dict[str, Any] = {"execute": cmd}
    if args:
        request["arguments"] = args
    stream.write(json.dumps(request).encode() + b"\n")
    stream.flush()
    while True:
        reply = _read_message(stream)
        if "event" in reply:
            continue
        if "error" in reply:
            raise QMPError(f"{cmd}: {reply['error'].get('class')}: {reply['error'].get('desc')}")
        return reply.get("return")


def _read_message(stream: Any) -> dict[str, Any]:
    line = stream.readline()
    if not line:
        raise QMPError("QMP connection closed")
    message: dict[str, Any] = json.loads(line)
    return message


def hotplug_virtio_disk(sock: Path, path: Path, *, node: str, serial: str | None = None,
                        fmt: str = "raw", readonly: bool = False,
                        port: str = "hotplug0") -> None:
    """Hot-plug a virtio-blk disk into a spare pcie-root-port (see vm.HOTPLUG_PORTS)."""
    qmp_command(sock, "blockdev-add", {
        "driver": fmt, "node-name": node, "read-only": readonly,
        "file": {"driver": "file", "filename": str(path.resolve()), "read-only": readonly},
    })
    device: dict[str, Any] = {"driver": "virtio-blk-pci", "id": node, "drive": node, "bus": port}
    if serial:
        device["serial"] = serial
    qmp_command(sock, "device_add", device)


def hotplug_scsi_disk(sock: Path, path: Path, *, node: str, serial: str | None = None,
                      fmt: str = "qcow2", bus: str = "scsi0.0") -> None:
    """Hot-plug a scsi-hd onto the virtio-scsi controller (start_job(scsi_controller=True)
    or a scsi Disk at boot): no PCI slot per disk, so dozens fit."""
    qmp_command(sock, "blockdev-add", {
        "driver": fmt, "node-name": node,
        "file": {"driver": "file", "filename": str(path.resolve())},
    })
    device: dict[str, Any] = {"driver": "scsi-hd", "id": node, "drive": node, "bus": bus}
    if serial:
        device["serial"] = serial
    qmp_command(sock, "device_add", device)
