"""Fixtures for the guest tests; see harness.py. The in-guest suites are not collected
on the host: they run inside the guest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from guestkit.image import GuestImage, build_image

from .harness import ROOT

collect_ignore = ["in_guest"]


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    return build_image("bookworm")


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(ROOT)],
        check=True,
    )  # fmt: skip
    (whl,) = dist.glob("direct_lvm-*.whl")
    return whl
