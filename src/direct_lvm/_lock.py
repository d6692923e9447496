"""The apply lock: one apply at a time (moved out of core.py so that a module that
runs before the engine is imported can use it)."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("direct_lvm")

LOCK_PATH = "/run/lock/direct-lvm.lock"


@contextmanager
def exclusive(path: str = LOCK_PATH) -> Iterator[None]:
    """One apply at a time: cloud-init's boot run and a person's apply may overlap, and
    each must plan from what the other left, not from what was there before."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another direct-lvm run to finish (lock %s)", path)
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield
