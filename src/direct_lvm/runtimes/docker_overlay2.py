"""docker-overlay2: what is mounted at /var/lib/docker (from /proc/self/mountinfo), what
is on our LV, the files that make docker use it, and the verification after apply."""

from __future__ import annotations

import json

from . import OWNER_TAG
from .errors import VerifyError
from .model import Spec
from .plan_runtime import MOUNT_UNIT_PATH, overlay2_args
from .probe import LvmState
from .render import render
from .run import run
from .runtime import DOCKER_DROPIN, DOCKER_ROOT
from .runtimes._lvroot import (
    devno,
    mount_at,
    parse_xfs_geometry,
    read_mountinfo,
    root_mount,
    xfs_size,
)
from .runtimes._lvroot import lv_signatures as _lv_signatures
from .runtimes._lvroot import volumes as _volumes

__all__ = ["devno", "mount_at", "parse_xfs_geometry", "read_mountinfo", "xfs_size"]


def docker_root_state(spec: Spec) -> tuple[str, tuple[str, ...]]:
    """(what is mounted at /var/lib/docker: "" / OURS / the other source, and what the
    directory holds when it is not our LV, which a takeover moves aside)."""
    return root_mount(spec.lv_path, DOCKER_ROOT)


def lv_signatures(spec: Spec, lvm: LvmState) -> tuple[str, ...] | None:
    """Signatures on our LV when it exists and is active; None otherwise."""
    return _lv_signatures(lvm, spec.vg, spec.overlay2.lv, spec.lv_path)


def mount_options(spec: Spec) -> str:
    return "defaults,prjquota" if spec.overlay2.container_size is not None else "defaults"


def files(spec: Spec, exec_start: str | None) -> dict[str, str]:
    out = {
        MOUNT_UNIT_PATH: render("var-lib-docker.mount.j2", vg=spec.vg, lv=spec.overlay2.lv,
                                what=spec.lv_path, options=mount_options(spec)),
    }  # fmt: skip
    if exec_start:
        out[DOCKER_DROPIN] = render("docker-overlay2.conf.j2", vg=spec.vg, lv=spec.overlay2.lv,
                                    exec_start=exec_start, args=overlay2_args(spec))  # fmt: skip
    return out


def verify(spec: Spec, lvm: LvmState, *, docker_checked: bool) -> tuple[str, ...]:
    ref = f"{spec.vg}/{spec.overlay2.lv}"
    lv, vg = lvm.lv(spec.vg, spec.overlay2.lv), lvm.vg(spec.vg)
    if lv is None or vg is None:
        raise VerifyError(f"{ref} does not exist after apply", "see the log above")
    problems = []
    if lv.attr[:1] != "-":
        problems.append(f"lv_attr {lv.attr!r}, expected a plain LV ('-...')")
    if OWNER_TAG not in lv.tags or OWNER_TAG not in vg.tags:
        problems.append(f"the {OWNER_TAG} tag is missing on the VG or the LV")
    m = mount_at(read_mountinfo(), DOCKER_ROOT)
    if m is None or m.devno != devno(spec.lv_path):
        problems.append(f"{DOCKER_ROOT} is not mounted from {spec.lv_path}")
    elif m.fstype != "xfs":
        problems.append(f"{DOCKER_ROOT} is {m.fstype}, expected xfs")
    elif spec.overlay2.container_size is not None and not m.options & {"prjquota", "pquota"}:
        problems.append(f"{DOCKER_ROOT} is mounted without project quotas (prjquota)")
    if docker_checked and not problems:
        problems.extend(_verify_docker())
    if problems:
        raise VerifyError(f"{ref} does not match the config: " + "; ".join(problems),
                          "see the log above")  # fmt: skip
    checks = [f"{ref}: plain LV, tagged", f"{DOCKER_ROOT}: xfs on {spec.lv_path}"]
    if docker_checked:
        checks.append(f"docker: overlay2 in {DOCKER_ROOT}")
    return tuple(checks)


def _verify_docker() -> list[str]:
    info = run(["docker", "info", "--format", "{{json .}}"], check=False)
    if info.returncode != 0:
        return [f"docker info failed: {info.stderr.strip()}"]
    data = json.loads(info.stdout)
    out = []
    if data.get("Driver") != "overlay2":
        out.append(f"docker storage driver {data.get('Driver')!r}, expected 'overlay2'")
    if data.get("DockerRootDir") != DOCKER_ROOT:
        out.append(f"Docker Root Dir {data.get('DockerRootDir')!r}, expected {DOCKER_ROOT!r}")
    return out


def volumes(lvm: LvmState, mountinfo: str) -> list[dict[str, object]]:
    """docker-overlay2's LVs and whether each is mounted at /var/lib/docker (status)."""
    return _volumes(lvm, mountinfo, (DOCKER_ROOT,))
