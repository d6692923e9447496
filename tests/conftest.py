import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# scripts/guestkit is the guest harness shared by tests and scripts.
sys.path.insert(0, str(ROOT / "scripts"))

# The guest files that take longest start first, so that with several workers (scripts/test
# runs pytest-xdist with --dist loadfile) the last one to finish is not a long one begun late.
# Measured alone under TCG on 2 cores, roughly: growth 14 min, the bullseye guests 10, runtimes
# 12, reset 9, cloud-init 8, devices 7, packer 6; the bullseye chroot (test_bullseye) mostly
# waits on the network. scripts/test keeps this order (--no-loadscope-reorder).
LONGEST_FIRST = (
    "test_guest_growth",
    "test_guest_bullseye",
    "test_guest_runtimes",
    "test_guest_reset",
    "test_bullseye",
    "test_guest_cloudinit",
    "test_guest_devices",
    "test_guest_lvroot",
    "test_packer",
    "test_guest_boot",
    "test_guest_core",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        stem = Path(str(getattr(item, "path", None) or item.fspath)).stem  # .path: pytest >= 7
        return LONGEST_FIRST.index(stem) if stem in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order inside each file is kept
