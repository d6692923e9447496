"""Which disks the config's `devices` entries mean. Pure: no I/O.

An entry is a path (resolved through its links by the caller) or a selector: any of `id`
(a /dev/disk/by-id name), `serial`, `wwn`, `size` / `min_size` / `max_size` and
`first_empty`, all of which must match. A selector is matched first against the PVs
already in our VG (so later runs and boots keep the same disks, and first_empty does not
grab a newer empty disk), then against the remaining whole disks."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import field

from ._record import Record, record
from .errors import ConfigError
from .probe import BlockDevice
from .units import format_size, human

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any

BY_ID = "/dev/disk/by-id/"
SELECTOR_KEYS = ("id", "serial", "wwn", "size", "min_size", "max_size", "first_empty")


@record
class Selector(Record):
    id: str = ""
    serial: str = ""
    wwn: str = ""
    size: int | None = None
    min_size: int | None = None
    max_size: int | None = None
    first_empty: bool = False
    # the entry as written (for to_mapping)
    text: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        """A short stable name for the entry: 'serial=vol0abc,min_size=10G'."""
        parts = []
        for key in SELECTOR_KEYS:
            value = getattr(self, key)
            if key == "first_empty":
                if value:
                    parts.append("first_empty")
            elif value not in ("", None):
                parts.append(f"{key}={format_size(value) if isinstance(value, int) else value}")
        return ",".join(parts)

    def to_mapping(self) -> dict[str, Any]:
        return dict(self.text or {})


def _norm_wwn(w: str) -> str:
    w = w.lower()
    return w[2:] if w.startswith("0x") else w


def _norm_serial(s: str) -> str:
    # AWS shows a volume as vol-0abc; its NVMe serial is vol0abc.
    return s.replace("-", "").lower()


def id_name(value: str) -> str:
    return value[len(BY_ID) :] if value.startswith(BY_ID) else value


def natural_key(path: str) -> tuple[tuple[int, int, str], ...]:
    """Kernel name order: vdb < vdc < vdz < vdaa, nvme1n1 < nvme2n1 < nvme10n1."""
    name = path.rsplit("/", 1)[-1]
    return tuple(
        (1, int(chunk), "") if chunk.isdigit() else (0, len(chunk), chunk)
        for chunk in re.findall(r"\d+|\D+", name)
    )


def mismatch(sel: Selector, dev: BlockDevice, links: Sequence[str]) -> str | None:
    """Why dev does not match the selector's identity keys (first_empty aside), or None."""
    if sel.id and id_name(sel.id) not in {id_name(x) for x in links}:
        return f"no by-id link {id_name(sel.id)}"
    if sel.serial and _norm_serial(sel.serial) != _norm_serial(dev.serial or "-"):
        return f"serial {dev.serial or '(none)'}"
    if sel.wwn and _norm_wwn(sel.wwn) != _norm_wwn(dev.wwn or "-"):
        return f"wwn {dev.wwn or '(none)'}"
    if sel.size is not None and dev.size != sel.size:
        return f"size {format_size(dev.size)}"
    if sel.min_size is not None and dev.size < sel.min_size:
        return f"size {format_size(dev.size)} < {format_size(sel.min_size)}"
    if sel.max_size is not None and dev.size > sel.max_size:
        return f"size {format_size(dev.size)} > {format_size(sel.max_size)}"
    return None


def not_empty(dev: BlockDevice, pv_vg: str | None) -> str | None:
    """Why a whole disk is not empty (first_empty skips it), or None."""
    if dev.is_root_disk:
        return "holds the root filesystem"
    if dev.mountpoints:
        return f"mounted at {', '.join(dev.mountpoints)}"
    if pv_vg is not None:
        return f"a PV of VG {pv_vg}" if pv_vg else "an LVM PV"
    if dev.pttype:
        return f"has a {dev.pttype} partition table" + (
            f" ({', '.join(dev.holders)})" if dev.holders else ""
        )
    if dev.holders:
        return f"has holders {', '.join(dev.holders)}"
    if dev.fstype:
        return f"has a {dev.fstype} signature"
    if dev.read_only:
        return "read-only"
    return None


@record
class Choice(Record):
    label: str  # the config entry (a path, or a selector's label)
    real: str  # the kernel device node
    reason: str  # why this device
    ours: bool  # already a PV of our VG
    serial: str = ""
    wwn: str = ""
    size: int = 0


@record
class Selection(Record):
    chosen: tuple[Choice, ...]
    missing: tuple[str, ...]  # entries nothing matched (yet)


def describe(dev: BlockDevice) -> str:
    return f"{dev.real} ({human(dev.size)}, serial {dev.serial or '-'})"


def select(
    entries: Sequence[str | Selector],
    disks: Mapping[str, BlockDevice],
    links: Mapping[str, Sequence[str]],
    resolved: Mapping[str, str],
    pv_vgs: Mapping[str, str],
    vg: str,
) -> Selection:
    """Map each entry to a device. `disks`: lsblk's devices by kernel path; `links`: kernel
    path -> its /dev/disk/by-id links; `resolved`: path entry -> kernel path; `pv_vgs`:
    PV kernel path -> its VG name ('' for an orphan PV). Raises ConfigError when a selector
    matches several new disks."""
    chosen: dict[str, Choice] = {}
    missing: list[str] = []
    claimed: set[str] = set()
    for e in entries:
        if isinstance(e, str):
            real = resolved.get(e, e)
            if real not in disks:
                missing.append(e)
                continue
            twin = next((c.label for c in chosen.values() if c.real == real), None)
            if twin is not None:
                raise ConfigError(
                    f"devices entries {twin} and {e} are the same disk ({real})",
                    "list each disk once",
                )
            why = "named by path" + (f" (a link to {real})" if real != e else "")
            chosen[e] = Choice(e, real, why, pv_vgs.get(real) == vg)
            claimed.add(real)
    order = sorted(disks, key=natural_key)
    # specific selectors before first_empty ones, so first_empty cannot take their disk
    sels = [e for e in entries if isinstance(e, Selector)]
    sels.sort(key=lambda s: s.first_empty)
    for sel in sels:
        ours = [
            p
            for p in order
            if pv_vgs.get(p) == vg
            and p not in claimed
            and mismatch(sel, disks[p], links.get(p, ())) is None
        ]
        if ours:
            chosen[sel.label] = Choice(sel.label, ours[0], f"already a PV of VG {vg}", True)
            claimed.add(ours[0])
            continue
        whole = [p for p in order if disks[p].type == "disk" and p not in claimed]
        matching = [p for p in whole if mismatch(sel, disks[p], links.get(p, ())) is None]
        if sel.first_empty:
            skipped = []
            pick = None
            for p in matching:
                why_not = not_empty(disks[p], pv_vgs.get(p))
                if why_not is None:
                    pick = p
                    break
                skipped.append(f"{p} {why_not}")
            if pick is None:
                missing.append(sel.label)
                continue
            reason = "the first empty whole disk in name order"
            if sel.label != "first_empty":
                reason += f" matching {sel.label}"
            if skipped:
                reason += "; skipped " + "; ".join(skipped)
            chosen[sel.label] = Choice(sel.label, pick, reason, False)
            claimed.add(pick)
            continue
        if not matching:
            missing.append(sel.label)
            continue
        if len(matching) > 1:
            raise ConfigError(
                f"devices entry {sel.label} matches {len(matching)} disks: "
                + ", ".join(describe(disks[p]) for p in matching),
                "make the entry match one disk: add serial, id or wwn, or narrow the size",
            )
        chosen[sel.label] = Choice(sel.label, matching[0], f"the only disk with {sel.label}", False)
        claimed.add(matching[0])
    labels = [e if isinstance(e, str) else e.label for e in entries]
    out = []
    for x in labels:
        if x in chosen:
            c, d = chosen[x], disks[chosen[x].real]
            out.append(Choice(c.label, c.real, c.reason, c.ours, d.serial, d.wwn, d.size))
    return Selection(tuple(out), tuple(missing))
