"""Packaging tests: build the .deb and the RPM with the distributions' own tools and look
inside. They run commands (dpkg-buildpackage, lintian, rpmbuild, bash, zsh), so they live
here and not in tests/unit; scripts/test runs them on the host (as root: the build
scripts install their tools with apt when missing)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _build(script: str) -> Path:
    out = subprocess.run(
        [str(ROOT / "scripts" / script)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, f"{script} failed:\n{out.stderr[-4000:]}"
    path = Path(out.stdout.strip().splitlines()[-1])
    assert path.is_file(), out.stdout
    return path


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def build() -> Callable[[str], Path]:
    """Run scripts/<name> and return the package path it printed."""
    return _build


@pytest.fixture(scope="session")
def units() -> list[str]:
    """The systemd units the tree ships (systemd/*.service, *.timer)."""
    return sorted(
        p.name for p in (ROOT / "systemd").glob("*") if p.suffix in (".service", ".timer")
    )
