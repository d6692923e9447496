"""What `direct-lvm status` reports, typed: each thin pool direct-lvm owns (PoolStatus,
with its PVs' identity), and each plain LV of a runtime that uses one (VolumeStatus).
core.status() and core.volumes() build them; report.py and the CLI read attributes;
`to_json()` is the JSON status prints (keys and order are the public format 1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PvStatus:
    device: str
    size: int
    serial: str
    wwn: str
    by_id: tuple[str, ...]  # the disk's own names first; lvm-pv-uuid-... links last
    entry: str | None  # the devices entry that chose it (from apply's record)
    reason: str | None  # and why

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "size": self.size,
            "serial": self.serial,
            "wwn": self.wwn,
            "by_id": list(self.by_id),
            "entry": self.entry,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class PoolStatus:
    vg: str
    pool: str
    dm_path: str
    size: int
    metadata_size: int
    data_percent: float | None
    metadata_percent: float | None
    chunk_size: int
    zero: bool
    when_full: str
    profile: str
    monitor: str
    attr: str
    vg_free: int
    autoextend_threshold: int | None  # None: autoextend off
    autoextend_percent: int | None
    extensions_left: int | None  # autoextend steps the VG has room for
    lv_uuid: str
    docker_backups: tuple[str, ...]  # docker's earlier storage, kept by a takeover
    warnings: tuple[str, ...] = ()
    pvs: tuple[PvStatus, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "vg": self.vg,
            "pool": self.pool,
            "dm_path": self.dm_path,
            "size": self.size,
            "metadata_size": self.metadata_size,
            "data_percent": self.data_percent,
            "metadata_percent": self.metadata_percent,
            "chunk_size": self.chunk_size,
            "zero": self.zero,
            "when_full": self.when_full,
            "profile": self.profile,
            "monitor": self.monitor,
            "attr": self.attr,
            "vg_free": self.vg_free,
            "autoextend_threshold": self.autoextend_threshold,
            "autoextend_percent": self.autoextend_percent,
            "extensions_left": self.extensions_left,
            "lv_uuid": self.lv_uuid,
            "docker_backups": list(self.docker_backups),
            "warnings": list(self.warnings),
            "pvs": [pv.to_json() for pv in self.pvs],
        }


@dataclass(frozen=True)
class VolumeStatus:
    vg: str
    lv: str
    dm_path: str
    size: int
    mounted_at: str | None  # the runtime root it is mounted at; None: not mounted

    def to_json(self) -> dict[str, Any]:
        return {
            "vg": self.vg,
            "lv": self.lv,
            "dm_path": self.dm_path,
            "size": self.size,
            "mounted_at": self.mounted_at,
        }
