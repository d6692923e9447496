"""Plain data types shared by the guestkit modules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GuestImage:
    """A bootable guest image. `kernel` is the preferred kernel to boot.

    root is never written by run_job (each boot gets a qcow2 overlay on it).
    """

    dist: str
    root: Path
    kernel: Path
    initrd: Path
    bzimage: Path
    vmlinux: Path | None
    kernel_version: str
    manifest: Path
    stamp: str
