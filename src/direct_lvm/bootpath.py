"""The boot path, shared by its two callers: direct-lvm's cloud-init module and
direct-lvm.service (`direct-lvm boot`). Whichever runs first in a boot does the work and
records it in /run/direct-lvm/boot.json (who, when, the result); a second run in the
same boot says who did it and does nothing. Every run logs one line that names it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import core
from .errors import DirectLvmError
from .probe import udev_settle
from .render import remember
from .run import discard_early

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger("direct_lvm")

BY_MODULE = "cloud-init module"
BY_SERVICE = "direct-lvm.service"
RECORD = "/run/direct-lvm/boot.json"  # /run: one boot's record, gone at the next boot
BOOT_LOCK = "/run/lock/direct-lvm-boot.lock"  # apply's own lock is core.LOCK_PATH
# Left by `direct-lvm image-setup`: this image expects a config at every boot.
MARKER = "/etc/direct-lvm/image-setup.json"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
# direct-lvm.service is ordered after udev's coldplug trigger, which only queues the
# boot's device events; the service waits (bounded) for udev to process them before its
# first LVM command, instead of pulling in the deprecated systemd-udev-settle.service.
UDEV_SETTLE_TIMEOUT = 120


def settle_udev(timeout: int = UDEV_SETTLE_TIMEOUT) -> None:
    """Wait (bounded) until udev has processed the events queued so far."""
    start = time.monotonic()
    settled = udev_settle(timeout, cap=timeout)
    took = time.monotonic() - start
    if not settled:
        log.info(
            "udev still busy after %d s; going on (direct-lvm waits for its own devices)", timeout
        )
    elif took >= 1:
        log.info("waited %.1f s for udev to process the boot's device events", took)


def boot_id(path: str = BOOT_ID) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def read_record(path: str = RECORD, this_boot: str | None = None) -> dict[str, Any] | None:
    """This boot's record, or None (none yet, unreadable, or left by another boot)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "by" not in data:
        return None
    if data.get("boot_id", "") != (boot_id() if this_boot is None else this_boot):
        return None
    return data


def write_record(by: str, result: str, code: int, path: str = RECORD) -> dict[str, Any]:
    record = {
        "by": by,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "result": result,
        "exit_code": code,
        "boot_id": boot_id(),
    }
    core.write_file(path, json.dumps(record, indent=2) + "\n")
    return record


def looked_at(by: str, config_path: str) -> str:
    if by == BY_MODULE:
        return f"the direct_lvm key of the cloud-config and {config_path}"
    return config_path


def no_config(by: str, config_path: str, marker: str = MARKER) -> None:
    """No config arrived. In an image set up for direct-lvm that is a fault (the runtime
    starts on its default storage), so it is a WARNING; elsewhere only a DEBUG line."""
    who = f"direct-lvm ({by})"
    where = looked_at(by, config_path)
    if not Path(marker).exists():
        log.debug("%s: no direct_lvm config (looked at %s); nothing to do", who, where)
        return
    log.warning(
        "%s: no config: looked at %s and found none, though this image was set up for "
        "direct-lvm (%s); the container runtime starts on its default storage. Fix: launch "
        "with user-data from `direct-lvm render` (it writes %s), or remove %s if this "
        "instance needs no pool",
        who,
        where,
        marker,
        config_path,
        marker,
    )


@contextmanager
def _early_report_stopped() -> Iterator[None]:
    """The module's early lvm report (early.py) not taken by apply (done this boot
    already, no config, a bad config) is stopped and reaped: cloud-init's process goes
    on after us."""
    try:
        yield
    finally:
        discard_early()


def run_boot(
    by: str,
    cloud_config: dict[str, Any],
    *,
    config_path: str = core.BOOT_CONFIG_FILE,
    record: str = RECORD,
    lock: str = BOOT_LOCK,
    marker: str = MARKER,
    before_work: Callable[[], None] | None = None,
) -> int:
    """Run the boot path once per boot. Returns the exit code (0, or the recorded code of
    an earlier failed run this boot); raises the DirectLvmError of a failure (after the
    runtime was held back), so that cloud-init reports it and the CLI exits with it.
    before_work runs when this run is the one to do the work (the service: settle_udev)."""
    who = f"direct-lvm ({by})"
    with core.exclusive(lock), _early_report_stopped():
        done = read_record(record)
        if done is not None:
            log.info(
                "%s: already done this boot by %s at %s (%s); nothing to do",
                who,
                done["by"],
                done.get("time", "?"),
                done.get("result", "?"),
            )
            code = done.get("exit_code", 0)
            return code if isinstance(code, int) else 1
        if before_work is not None:
            before_work()
        try:
            # a converged boot parses the config file and renders from the record,
            # without PyYAML (outside cloud-init) and jinja2
            remember()
            mapping = core.boot_config(cloud_config, config_path)
            if mapping is None:
                no_config(by, config_path, marker)
                return 0
            result = core.boot(mapping, who=who)
        except DirectLvmError as e:
            write_record(by, f"failed: {e.message.splitlines()[0]}", e.exit_code, record)
            raise
        except Exception as e:
            write_record(by, f"failed: {type(e).__name__}: {e}", 1, record)
            raise
        steps = len(result.plan.steps)
        summary = f"{steps} step(s) applied" if steps else "nothing changed"
        write_record(by, f"ok: {summary}", 0, record)
        return 0
