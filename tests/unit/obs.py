"""Build an Observed for the pure plan from the facts a test cares about (the runtime's
service, its config and storage, a plain LV's root), so tests read as before the
runtime state became one object."""

from __future__ import annotations

import json

from direct_lvm.observed import Observed, RootState, RuntimeState
from direct_lvm.probe import Mount, parse_findmnt


def make_observed(
    lvm,
    devices=None,
    files=None,
    docker=None,
    *,
    containerd=None,
    docker_foreign=(),
    daemon_json=None,
    devmapper_status=None,
    lv_signatures=None,
    docker_root_mount="",
    mount_enabled=False,
    fs_bytes=None,
    **kw,
):
    runtime = RuntimeState(
        service=containerd if containerd is not None else docker,
        foreign=tuple(docker_foreign),
        config=daemon_json,
        health=devmapper_status,
        root=RootState(docker_root_mount, lv_signatures, mount_enabled, fs_bytes),
    )
    return Observed(lvm, devices or {}, files or {}, runtime, **kw)


def state(service=None, config=None):
    """The runtime state core.desired_files renders from."""
    return RuntimeState(service=service, config=config)


def check_runtime(spec, docker=None, ctd=None):
    """The whole version gate on a state that knows the version (make_plan runs it
    before changes)."""
    from direct_lvm import runtimes

    runtimes.get(spec.runtime).gate(spec, RuntimeState(service=ctd if ctd is not None else docker))


def findmnt(*rows: tuple[str, str, str, str, str]) -> tuple[Mount, ...]:
    """Mounts as probe.parse_findmnt reads them from `findmnt --json --list` output; a row
    is (target, source, fstype, maj:min, options)."""
    keys = ("target", "source", "fstype", "maj:min", "options")
    return parse_findmnt(json.dumps({"filesystems": [dict(zip(keys, r)) for r in rows]}))
