"""The config's runtime names and the table name -> module (and section). A leaf: it
imports nothing of the package, so model.py can name Runtime without a circle."""

from __future__ import annotations

from .._compat import StrEnum


class Runtime(StrEnum):
    """The config's `runtime:` values."""

    DOCKER_DEVICEMAPPER = "docker-devicemapper"
    CONTAINERD_DEVMAPPER = "containerd-devmapper"
    DOCKER_OVERLAY2 = "docker-overlay2"
    CONTAINERD_OVERLAYFS = "containerd-overlayfs"
    PODMAN = "podman"


# runtime -> (its module in this package, its cloud-config section or None). The section
# is here, not only in the module, so spec.py can refuse a section set for another
# runtime without importing every runtime.
TABLE: dict[Runtime, tuple[str, str | None]] = {
    Runtime.DOCKER_DEVICEMAPPER: ("docker_devicemapper", None),
    Runtime.CONTAINERD_DEVMAPPER: ("containerd_devmapper", "containerd"),
    Runtime.DOCKER_OVERLAY2: ("docker_overlay2", "overlay2"),
    Runtime.CONTAINERD_OVERLAYFS: ("containerd_overlayfs", "containerd_overlayfs"),
    Runtime.PODMAN: ("podman", "podman"),
}
