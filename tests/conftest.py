import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# scripts/guestkit is the guest harness shared by tests and scripts.
sys.path.insert(0, str(ROOT / "scripts"))

# The guest files that take longest start first, so that with several workers (scripts/test
# runs pytest-xdist with --dist loadfile) the last one to finish is not a long one begun late.
# Measured alone under TCG on 2 cores: growth ~14 min, runtimes ~12, devices ~7, the rest less.
LONGEST_FIRST = (
    "test_guest_growth",
    "test_guest_runtimes",
    "test_bullseye",
    "test_guest_bullseye",
    "test_guest_devices",
    "test_packer",
    "test_guest_cloudinit",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        stem = Path(str(getattr(item, "path", None) or item.fspath)).stem  # .path: pytest >= 7
        return LONGEST_FIRST.index(stem) if stem in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order inside each file is kept
