"""The thin pool's own pieces, for the runtimes that consume it: its LVM autoextend
profile (path, content, and the policy lvmconfig reads back for status) and its
verification after apply. The pool itself is planned in plan.py and grown in growth.py."""

from __future__ import annotations

from collections.abc import Callable

from . import OWNER_TAG
from .errors import VerifyError
from .model import Spec
from .probe import LvmState
from .render import render
from .run import run
from .units import format_size

PROFILE_DIR = "/etc/lvm/profile"


def profile_file(name: str) -> str:
    """The path of the LVM metadata profile `name`."""
    return f"{PROFILE_DIR}/{name}.profile"


def profile_path(spec: Spec) -> str:
    return profile_file(spec.profile_name)


def profile_files(spec: Spec) -> dict[str, str]:
    """{the profile's path: its content}: the autoextend policy lvcreate names."""
    return {
        profile_path(spec): render(
            "lvm-profile.profile.j2",
            vg=spec.vg,
            pool=spec.pool,
            threshold=spec.autoextend.threshold,
            percent=spec.autoextend.percent,
        )
    }


AUTOEXTEND_KEYS = ("thin_pool_autoextend_threshold", "thin_pool_autoextend_percent")


def profile_policy_argv(name: str) -> list[str]:
    """lvmconfig's view of the autoextend settings for a pool with metadata profile
    `name`: the profile merged over lvm.conf and LVM's defaults, as dmeventd applies them."""
    return ["lvmconfig", "--typeconfig", "full", "--mergedconfig", "--metadataprofile", name,
            *(f"activation/{k}" for k in AUTOEXTEND_KEYS)]  # fmt: skip


def parse_profile_policy(text: str) -> tuple[int, int] | None:
    """(threshold, percent) from lvmconfig's `key=value` lines; None when autoextend is
    off (threshold 100) or a value is missing."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if sep and key in AUTOEXTEND_KEYS and value.isdigit():
            values[key] = int(value)
    threshold, percent = (values.get(k) for k in AUTOEXTEND_KEYS)
    if threshold is None or percent is None or threshold >= 100:
        return None
    return threshold, percent


def profile_policy(name: str) -> tuple[int, int] | None:
    """(threshold, percent) of the autoextend policy for a pool with metadata profile
    `name`, read with one lvmconfig call (status only: apply and the boot path compare the
    profile file's text with the one they render and never read the policy back). None
    without a profile, when lvm cannot load it, or when autoextend is off."""
    if not name:
        return None
    result = run(profile_policy_argv(name), check=False)
    return parse_profile_policy(result.stdout) if result.returncode == 0 else None


def _monitor_hint() -> str:
    state = run(["systemctl", "is-active", "dm-event.socket", "dm-event.service"], check=False)
    if "active" not in state.stdout.split():
        return (
            "dmeventd is not running, so LVM cannot monitor (or autoextend) the pool: "
            "systemctl enable --now dm-event.socket lvm2-monitor.service, then run "
            "direct-lvm apply again"
        )
    return "check `journalctl -u dm-event` and lvm.conf activation/monitoring, then re-run apply"


def verify_pool(
    spec: Spec, lvm: LvmState, runtime_problems: Callable[[], list[str]] | None = None
) -> tuple[str, ...]:
    """Compare the re-probed pool with the spec, and add what `runtime_problems` finds
    (the runtime's own view after a restart); raise VerifyError on any difference."""
    ref = f"{spec.vg}/{spec.pool}"
    pool = lvm.lv(spec.vg, spec.pool)
    vg = lvm.vg(spec.vg)
    problems: list[str] = []
    if pool is None or vg is None:
        raise VerifyError(f"{ref} does not exist after apply", "see the log above")
    expect: list[tuple[str, object, object]] = [
        ("thin pool (lv_attr t...)", pool.attr[:1], "t"),
        ("chunk size", format_size(pool.chunk_size), format_size(spec.chunk_size)),
        ("zeroing", pool.zero, spec.zero),
        ("metadata profile", pool.profile, spec.profile_name),
        ("VG tag", OWNER_TAG in vg.tags, True),
        ("pool tag", OWNER_TAG in pool.tags, True),
        ("when full", pool.when_full, "error" if spec.error_when_full else "queue"),
    ]
    for what, got, want in expect:
        if got != want:
            problems.append(f"{what}: {got!r}, expected {want!r}")
    hint = "see the log above"
    if pool.monitor != "monitored":
        problems.append(f"seg_monitor: {pool.monitor!r}, expected 'monitored'")
        hint = _monitor_hint()
    if runtime_problems is not None:
        problems.extend(runtime_problems())
    if problems:
        raise VerifyError(f"{ref} does not match the config: " + "; ".join(problems), hint)
    return tuple(f"{what}: {want!r}" for what, _, want in expect) + ("seg_monitor: monitored",)
