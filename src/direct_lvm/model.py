"""The frozen types a validated config becomes (spec.py parses and validates; this module
only holds the result, so the runtimes can name Spec without importing the parser)."""

from __future__ import annotations

from dataclasses import dataclass

from .devices import Selector
from .runtimes import Runtime
from .units import dm_name


@dataclass(frozen=True)
class Autoextend:
    threshold: int
    percent: int

    @property
    def enabled(self) -> bool:
        return self.threshold < 100


@dataclass(frozen=True)
class Containerd:
    """containerd's devmapper snapshotter options (pool_name is derived, never set)."""

    root_path: str = "/var/lib/containerd/io.containerd.snapshotter.v1.devmapper"
    base_image_size: int = 10 * 1024**3  # bytes
    async_remove: bool = False
    discard_blocks: bool = True
    fs_type: str = "ext4"
    fs_options: str = ""


@dataclass(frozen=True)
class Overlay2:
    """docker-overlay2: the dedicated LV and an optional per-container size limit."""

    lv: str = "docker"
    container_size: int | None = None  # bytes; None: no limit, no project quotas


@dataclass(frozen=True)
class Spec:
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
    selectors: tuple[Selector, ...] = ()  # the selector entries of devices
    containerd: Containerd = Containerd()
    overlay2: Overlay2 = Overlay2()

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
        """vg/lv of the storage this config manages: the pool, or overlay2's LV."""
        lv = self.overlay2.lv if self.runtime is Runtime.DOCKER_OVERLAY2 else self.pool
        return f"{self.vg}/{lv}"

    @property
    def lv_dm_name(self) -> str:
        """docker-overlay2: device-mapper name of the dedicated LV."""
        return dm_name(self.vg, self.overlay2.lv)

    @property
    def lv_path(self) -> str:
        return f"/dev/mapper/{self.lv_dm_name}"
