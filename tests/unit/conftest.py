"""Unit tests run pure logic only: any real subprocess call fails the test."""

import logging
import subprocess

import pytest


def _forbidden(*args, **kwargs):
    raise AssertionError(f"unit tests must not run commands: {args[:1]!r}")


@pytest.fixture(autouse=True)
def no_subprocess(monkeypatch):
    for name in ("run", "Popen", "call", "check_call", "check_output"):
        monkeypatch.setattr(subprocess, name, _forbidden)


@pytest.fixture(autouse=True)
def fresh_logger():
    """cli.main gives the direct_lvm logger its own stderr handler and stops propagation;
    undo that after each test, so a later test's caplog sees records (pytest 6, bullseye's,
    does not reach a non-propagating logger) and no handler writes to a closed capture."""
    yield
    logger = logging.getLogger("direct_lvm")
    logger.handlers[:] = []
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


@pytest.fixture
def blank_disk():
    from direct_lvm.probe import BlockDevice

    def make(path="/dev/vdb", size=4 << 30, **kw):
        fields = dict(
            path=path,
            real=path,
            type="disk",
            size=size,
            fstype="",
            pttype="",
            mountpoints=(),
            holders=(),
            is_root_disk=False,
            read_only=False,
        )
        fields.update(kw)
        return BlockDevice(**fields)

    return make
