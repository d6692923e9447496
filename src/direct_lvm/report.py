"""Output for scripts and monitoring, pure (no commands, no engine imports): the
versioned JSON envelopes, `status --check` in the monitoring-plugins convention
(Nagios/Icinga), and `status --format prometheus` (node_exporter's textfile collector).

status entries are core.status()'s pools and core.volumes()'s LVs (status.py's types)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .status import PoolStatus, VolumeStatus

# Bumped only when a field changes meaning or goes away; new fields keep format 1.
JSON_FORMAT = 1

# monitoring-plugins' exit codes (https://www.monitoring-plugins.org/doc/guidelines.html)
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
# worst first: a CRITICAL pool outranks a WARNING one, which outranks not knowing
_RANK = {CRITICAL: 3, WARNING: 2, UNKNOWN: 1, OK: 0}
# With autoextend off nothing grows the pool: warn from this usage on (as core does).
DEFAULT_WARN_PERCENT = 80
# lv_attr's 9th character (lv_health_status): states in which the pool cannot take writes
HEALTH_CRITICAL = {"F": "failed", "D": "out of data space", "M": "metadata read-only"}


def envelope(**fields: Any) -> dict[str, Any]:
    """Every --json document: {"format": 1, ...}."""
    return {"format": JSON_FORMAT, **fields}


def error_json(code: int, message: str, fix: str | None, **known: Any) -> dict[str, Any]:
    """The --json form of an error (stdout; the human line still goes to stderr)."""
    err: dict[str, Any] = {"code": code, "message": message}
    if "field" in known and known["field"] is not None:
        err["field"] = known["field"]
    if "value" in known:
        err["value"] = known["value"]
    err["fix"] = fix
    if known.get("problems"):
        err["problems"] = known["problems"]
    return envelope(error=err)


@dataclass(frozen=True)
class Check:
    """The verdict of `status --check`: exit code, one status line with perfdata, and
    each pool's own state."""

    code: int
    line: str
    states: tuple[tuple[str, int, str], ...]  # (vg/lv, code, why)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "state": STATE_NAMES[self.code],
            "line": self.line,
            "items": [{"name": n, "state": STATE_NAMES[c], "why": w} for n, c, w in self.states],
        }


def pool_state(p: PoolStatus) -> tuple[int, str]:
    """(code, why) of one thin pool.
    CRITICAL: data or metadata at 100%, or LVM reports the pool failed, out of data space
    or with read-only metadata (lv_attr's health character F, D, M): writes fail or hang.
    WARNING: past its autoextend threshold with no room for one more step (core's
    warnings), or autoextend configured but the pool not monitored (dmeventd would never
    extend it). UNKNOWN: LVM reports no usage (the pool is not active)."""
    attr = p.attr or ""
    health = HEALTH_CRITICAL.get(attr[8]) if len(attr) > 8 else None
    if health:
        return CRITICAL, health
    data, meta = p.data_percent, p.metadata_percent
    if data is None or meta is None:
        return UNKNOWN, "no usage reported (is the pool active?)"
    full = [w for w, v in (("data", data), ("metadata", meta)) if v >= 100]
    if full:
        return CRITICAL, " and ".join(full) + " full"
    if p.warnings:
        threshold = p.autoextend_threshold or DEFAULT_WARN_PERCENT
        return WARNING, f"past {threshold}% with no room to extend"
    if p.autoextend_percent is not None and p.monitor != "monitored":
        return WARNING, "not monitored: autoextend will not run"
    return OK, ""


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}%"


def _perf_value(x: float | None) -> str:
    return "U" if x is None else f"{x:g}"


def check(pools: Sequence[PoolStatus], volumes: Sequence[VolumeStatus] = ()) -> Check:
    """`status --check`: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (nothing managed here)."""
    states: list[tuple[str, int, str]] = []
    parts: list[str] = []
    perf: list[str] = []
    single = len(pools) == 1
    for p in pools:
        name = f"{p.vg}/{p.pool}"
        code, why = pool_state(p)
        states.append((name, code, why))
        text = f"{name} data {_pct(p.data_percent)} meta {_pct(p.metadata_percent)}"
        parts.append(f"{text}: {STATE_NAMES[code]} {why}" if code != OK else text)
        warn = p.autoextend_threshold or DEFAULT_WARN_PERCENT
        prefix = "" if single else f"{name} "
        for label, value in (
            ("data_percent", p.data_percent),
            ("metadata_percent", p.metadata_percent),
        ):
            perf.append(_perf_label(prefix + label) + f"={_perf_value(value)}%;{warn};100;0;100")
    for v in volumes:
        name = f"{v.vg}/{v.lv}"
        mounted = bool(v.mounted_at)
        code, why = (OK, "") if mounted else (WARNING, "not mounted")
        states.append((name, code, why))
        where = f"mounted at {v.mounted_at}" if mounted else "NOT mounted"
        parts.append(f"{name} LV {where}")
        perf.append(_perf_label(f"{name} size") + f"={v.size}B;;;0")
    if not states:
        return Check(
            UNKNOWN,
            "DIRECT-LVM UNKNOWN - no thin pool or LV managed by direct-lvm on this host",
            (),
        )
    code = max((c for _, c, _ in states), key=lambda c: _RANK[c])
    line = f"DIRECT-LVM {STATE_NAMES[code]} - " + "; ".join(parts)
    return Check(code, line + " | " + " ".join(perf), tuple(states))


def unknown(reason: str) -> Check:
    """The verdict when status itself failed (lvm did not answer)."""
    return Check(UNKNOWN, f"DIRECT-LVM UNKNOWN - {reason}".splitlines()[0], ())


def _perf_label(label: str) -> str:
    """A perfdata label, quoted when it has spaces (and ' doubled), as the guidelines say."""
    if any(c in label for c in " '=\""):
        return "'" + label.replace("'", "''") + "'"
    return label


# ------------------------------------------------------------------ prometheus


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(x: float) -> str:
    if isinstance(x, bool):
        return "1" if x else "0"
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("+Inf" if x > 0 else "-Inf")
    return repr(x) if isinstance(x, float) else str(x)  # repr: every digit of a timestamp


# name -> (help, unit-free description of the value); every metric is a gauge
METRICS = {
    "direct_lvm_pool_data_percent": "Thin pool data usage, percent of its data size.",
    "direct_lvm_pool_metadata_percent": "Thin pool metadata usage, percent.",
    "direct_lvm_pool_size_bytes": "Thin pool data size in bytes.",
    "direct_lvm_pool_metadata_size_bytes": "Thin pool metadata size in bytes.",
    "direct_lvm_pool_autoextend_threshold_percent": "Usage at which LVM autoextends the "
    "pool (absent when autoextend is off).",
    "direct_lvm_pool_autoextend_steps_left": "Autoextend steps the volume group still has "
    "room for (absent when autoextend is off).",
    "direct_lvm_pool_monitored": "1 when dmeventd monitors the pool (needed for autoextend).",
    "direct_lvm_pool_check_state": "status --check's verdict for the pool: 0 OK, 1 WARNING, "
    "2 CRITICAL, 3 UNKNOWN.",
    "direct_lvm_vg_free_bytes": "Free bytes in the volume group (room to extend).",
    "direct_lvm_lv_size_bytes": "Size in bytes of a plain LV (docker-overlay2).",
    "direct_lvm_lv_mounted": "1 when the plain LV is mounted.",
    "direct_lvm_last_apply_timestamp_seconds": "When the last apply (CLI or boot) ended, "
    "Unix time.",
    "direct_lvm_last_apply_success": "1 when the last apply succeeded, 0 when it failed.",
}


def prometheus(
    pools: Sequence[PoolStatus],
    volumes: Sequence[VolumeStatus] = (),
    last_apply: dict[str, Any] | None = None,
) -> str:
    """The text exposition format (version 0.0.4), one HELP/TYPE block per metric."""
    samples: dict[str, list[str]] = {name: [] for name in METRICS}

    def add(name: str, labels: str, value: float | None) -> None:
        if value is not None:
            samples[name].append(f"{name}{labels} {_number(value)}")

    vgs: dict[str, int] = {}
    for p in pools:
        lab = _labels(vg=str(p.vg), pool=str(p.pool))
        add("direct_lvm_pool_data_percent", lab, p.data_percent)
        add("direct_lvm_pool_metadata_percent", lab, p.metadata_percent)
        add("direct_lvm_pool_size_bytes", lab, p.size)
        add("direct_lvm_pool_metadata_size_bytes", lab, p.metadata_size)
        add("direct_lvm_pool_autoextend_threshold_percent", lab, p.autoextend_threshold)
        add("direct_lvm_pool_autoextend_steps_left", lab, p.extensions_left)
        add("direct_lvm_pool_monitored", lab, int(p.monitor == "monitored"))
        add("direct_lvm_pool_check_state", lab, pool_state(p)[0])
        vgs[str(p.vg)] = int(p.vg_free)
    for v in volumes:
        lab = _labels(vg=str(v.vg), lv=str(v.lv))
        add("direct_lvm_lv_size_bytes", lab, v.size)
        add("direct_lvm_lv_mounted", lab, int(bool(v.mounted_at)))
    for vg, free in sorted(vgs.items()):
        add("direct_lvm_vg_free_bytes", _labels(vg=vg), free)
    if last_apply:
        add("direct_lvm_last_apply_timestamp_seconds", "", float(last_apply["timestamp"]))
        add("direct_lvm_last_apply_success", "", int(bool(last_apply["success"])))
    return "".join(_block(name, samples[name]) for name in METRICS if samples[name])


def _block(name: str, lines: Iterable[str]) -> str:
    head = f"# HELP {name} {METRICS[name]}\n# TYPE {name} gauge\n"
    return head + "".join(f"{line}\n" for line in lines)
