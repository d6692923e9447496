"""The apply lock (one apply at a time) and its generation.

Every holder of the lock raises a counter kept in the lock file when it lets go. A
report taken before the lock (early.py: the first `lvm fullreport` of a run, started
while Python still imports the engine) is used only when the lock was free as it
started and the counter is the same once the lock is held: nobody held the lock in
between, so no direct-lvm run changed LVM meanwhile."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("direct_lvm")

LOCK_PATH = "/run/lock/direct-lvm.lock"


def _open(path: str) -> int:
    """The lock file, made if missing. Not through a symlink (O_NOFOLLOW): /run/lock is
    writable by everyone, and root writes the generation into what it opens."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)


def _generation(fd: int) -> int:
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else 0


@contextmanager
def exclusive(path: str = LOCK_PATH) -> Iterator[int]:
    """One apply at a time: cloud-init's boot run and a person's apply may overlap, and
    each must plan from what the other left, not from what was there before. Yields
    the lock's generation as found; raises it by one on the way out (even on error)."""
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another direct-lvm run to finish (lock %s)", path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        generation = _generation(fd)
        try:
            yield generation
        finally:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{generation + 1}\n".encode("ascii"), 0)
    finally:
        os.close(fd)  # lets the lock go


def idle_generation(path: str = LOCK_PATH) -> int | None:
    """The lock's generation when nobody holds it (taken and let go at once), else None
    (held, or the lock file cannot be opened)."""
    try:
        fd = _open(path)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    try:
        return _generation(fd)
    finally:
        os.close(fd)
