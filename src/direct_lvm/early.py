"""The first LVM report of an apply, started before the engine is imported (issue 13).

Under TCG a first apply or a converged boot spends ~0.3-0.5 s importing the engine and
~0.25 s in its first `lvm fullreport`, one after the other. The report does not depend
on the config (same argv every run), so the entry points (`direct-lvm apply`, the
cloud-init module) start it first and the imports run while lvm scans. It is used only
when the apply lock was free as it started and no run held the lock since (the lock's
generation, _lock.py); otherwise it is stopped and apply runs it again under the lock.
Never before the boot path's udev settle (direct-lvm.service): not started there."""

from __future__ import annotations

from ._lock import idle_generation
from .probe import fullreport_argv
from .run import start_early


def start_report() -> None:
    generation = idle_generation()
    if generation is not None:
        start_early(fullreport_argv(), generation)
