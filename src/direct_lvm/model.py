"""The frozen types a validated config becomes (spec.py parses and validates; this module
only holds the result, so the runtimes can name Spec without importing the parser)."""

from __future__ import annotations

from ._record import Record, record
from .devices import Selector
from .runtimes.table import Runtime
from .units import dm_name

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any


@record
class Autoextend(Record):
    threshold: int
    percent: int

    @property
    def enabled(self) -> bool:
        return self.threshold < 100


@record
class Spec(Record):
    runtime: Runtime
    devices: tuple[str, ...]  # labels: a path, or a selector's label (see selectors)
    vg: str
    pool: str
    data_percent: int
    metadata_size: int | None  # bytes; None means auto
    chunk_size: int  # bytes
    zero: bool
    autoextend: Autoextend
    wipe_signatures: bool
    wait_timeout: float
    error_when_full: bool = False  # lvm's --errorwhenfull: fail writes at once, not queue
    # lvm's allocation/zero_metadata when the pool is created: the whole metadata LV and
    # its spare zeroed (lvm's default) or only their first 4 KiB
    zero_metadata: bool = True
    selectors: tuple[Selector, ...] = ()  # the selector entries of devices
    # The LV this config's storage is: the pool, or a plain-LV runtime's own LV ("": the
    # pool). Set by the parser from the runtime plugin's lv_field.
    lv: str = ""
    # The runtime's own section as its plugin parsed it (None: the runtime has none).
    options: Any = None

    @property
    def entries(self) -> tuple[str | Selector, ...]:
        """The devices entries in config order: paths and selectors."""
        by_label = {s.label: s for s in self.selectors}
        return tuple(by_label.get(d, d) for d in self.devices)

    @property
    def profile_name(self) -> str:
        return f"{self.vg}-{self.pool}"

    @property
    def pool_dm_name(self) -> str:
        return dm_name(self.vg, self.pool)

    @property
    def pool_path(self) -> str:
        return f"/dev/mapper/{self.pool_dm_name}"

    @property
    def ref(self) -> str:
        """vg/lv of the storage this config manages: the pool, or the runtime's LV."""
        return f"{self.vg}/{self.lv or self.pool}"

    @property
    def lv_dm_name(self) -> str:
        """Device-mapper name of the LV this config manages."""
        return dm_name(self.vg, self.lv or self.pool)

    @property
    def lv_path(self) -> str:
        return f"/dev/mapper/{self.lv_dm_name}"
