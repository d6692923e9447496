"""Unit tests run pure logic only: any real subprocess call fails the test."""

import subprocess

import pytest


def _forbidden(*args, **kwargs):
    raise AssertionError(f"unit tests must not run commands: {args[:1]!r}")


@pytest.fixture(autouse=True)
def no_subprocess(monkeypatch):
    for name in ("run", "Popen", "call", "check_call", "check_output"):
        monkeypatch.setattr(subprocess, name, _forbidden)


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
