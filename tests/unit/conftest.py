"""Unit tests run pure logic only: any real subprocess call fails the test."""

import logging
import subprocess
import sys

import pytest

_OWN_POPEN = subprocess.Popen  # before no_subprocess replaces it; for own_python only


def _forbidden(*args, **kwargs):
    raise AssertionError(f"unit tests must not run commands: {args[:1]!r}")


@pytest.fixture(autouse=True)
def no_subprocess(monkeypatch):
    for name in ("run", "Popen", "call", "check_call", "check_output"):
        monkeypatch.setattr(subprocess, name, _forbidden)


@pytest.fixture
def own_python():
    """Run our own interpreter (sys.executable) on a `-c` program and return its stdout:
    for tests of what a fresh process imports. It runs no system tool."""

    def run(code: str) -> str:
        argv = [sys.executable, "-c", code]
        with _OWN_POPEN(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
            out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        return str(out)

    return run


@pytest.fixture(autouse=True)
def render_record_in_tmp(monkeypatch, tmp_path):
    """apply and the boot path keep a render record (render.RECORD, under /var/lib):
    in unit tests it goes to the test's tmp_path, and is switched off afterwards."""
    from direct_lvm import render

    monkeypatch.setattr(render, "RECORD", str(tmp_path / "rendered.json"))
    yield
    render.forget()


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
