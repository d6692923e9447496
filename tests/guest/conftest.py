"""Fixtures for the guest tests; see harness.py. The in-guest suites are not collected
on the host: they run inside the guest."""

from __future__ import annotations

from pathlib import Path

import pytest

from guestkit.deb import build_deb
from guestkit.image import GuestImage, build_image

from .harness import ROOT

collect_ignore = ["in_guest"]


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    return build_image("bookworm")


@pytest.fixture(scope="session")
def bullseye_image() -> GuestImage:
    return build_image("bullseye")


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """direct-lvm's .deb, built once per session by scripts/build-deb (a private copy:
    xdist workers build side by side). Guests install it with apt-get from the job
    disk: no pip in any guest."""
    return build_deb(ROOT, tmp_path_factory.mktemp("deb"))
