"""The floor, proven on the oldest distribution we serve: scripts/test-bullseye runs the unit
tests on Debian bullseye's own python3 3.9 and its packaged jinja2, PyYAML, jsonschema and
tomlkit (a debootstrap chroot), then installs the .deb there with apt from bullseye's archive
and imports the command and the cloud-init module with bullseye's python3.

It is a test here, not a step of scripts/test, so that under pytest-xdist it runs beside the
guest tests (it mostly waits on the network and dpkg) instead of before them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging


@pytest.fixture(scope="module")
def bullseye(root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str]:
    log = tmp_path_factory.mktemp("bullseye") / "test-bullseye.log"
    with log.open("w") as fh:
        proc = subprocess.run(
            [str(root / "scripts" / "test-bullseye")], stdout=fh, stderr=subprocess.STDOUT
        )
    return proc.returncode, log.read_text()


def test_unit_tests_pass_on_bullseyes_python_and_libraries(bullseye: tuple[int, str]) -> None:
    rc, out = bullseye
    assert "python3 3.9.2, jinja2 2.11.3, PyYAML 5.3.1, jsonschema 3.2.0" in out, out[-3000:]
    summary = re.search(r"^=*\s*(\d+) passed(?P<rest>.*?)(?: in [\d.]+s)", out, re.M)
    assert summary, f"no pytest summary from the chroot (exit {rc}):\n{out[-3000:]}"
    assert int(summary.group(1)) > 100
    assert not re.search(r"\b(failed|error)", summary.group("rest")), summary.group(0)


def test_the_deb_installs_from_bullseyes_archive(bullseye: tuple[int, str]) -> None:
    rc, out = bullseye
    assert rc == 0, out[-3000:]
    assert "cc_direct_lvm from /usr/lib/python3/dist-packages/cc_direct_lvm.py" in out
    assert re.search(r"^direct-lvm \d", out, re.M), out[-2000:]
