"""What probing found, as the pure plan reads it: `Observed` (LVM, the devices, the
managed files, and ONE runtime state), `RuntimeState` (what a runtime plugin's probe
returns) and `RootState` (a plain-LV runtime's LV, filesystem and mount)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field

from ._record import Record, record
from .devices import Choice
from .probe import BlockDevice, LvmState, Mount
from .runtimes._systemd import ServiceState

# RootState.mount when the runtime's root is our LV
OURS = "ours"


@record
class RootState(Record):
    """A plain-LV runtime's root directory and LV (runtimes/_lvroot.py probes it)."""

    mount: str = ""  # what is mounted at the root: "" nothing, OURS, else "<source> (<fstype>)"
    signatures: tuple[str, ...] | None = None  # on our LV; None: the LV is absent/inactive
    mount_enabled: bool = False  # the root's mount unit is enabled (local-fs.target)
    fs_bytes: int | None = None  # the mounted XFS's size per the kernel (None: not ours)
    busy: tuple[str, ...] = ()  # mounts of running containers below the root
    at_root: Mount | None = None  # what findmnt found mounted at the root (None: nothing)


@record
class RuntimeState(Record):
    """One runtime as its plugin's probe found it. Fields a runtime does not use stay at
    their defaults."""

    service: ServiceState | None = None  # its main unit (None: not probed)
    foreign: tuple[str, ...] = ()  # what its storage directory holds that is not ours
    config: str | None = None  # the runtime's own config file (daemon.json, config.toml)
    health: str | None = None  # the runtime's own word on our storage (ctr plugins ls)
    root: RootState | None = None  # plain-LV runtimes only


@record
class Observed(Record):
    lvm: LvmState
    devices: Mapping[str, BlockDevice] = field(default_factory=dict)  # devices not yet ours
    files: Mapping[str, str | None] = field(default_factory=dict)  # managed path -> content
    runtime: RuntimeState = RuntimeState()  # the configured runtime, as its plugin probed it
    timestamp: str = "00000000T000000"  # names a backup of the runtime's storage
    resolved: Mapping[str, str] = field(default_factory=dict)  # config entry -> kernel node
    choices: tuple[Choice, ...] = ()  # which device each entry chose, and why
    device_record: str | None = None  # DEVICE_RECORD's content
