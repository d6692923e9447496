"""The RPM spec, on paper for RHEL 9: rpmbuild -bb builds it here and it holds the module
where EL9's python3.9 imports it, the command, the man page, completions and units."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from direct_lvm import __version__

pytestmark = pytest.mark.packaging

SITE = "/usr/lib/python3.9/site-packages"


def rpm_query(rpm: Path, *args: str) -> list[str]:
    out = subprocess.run(["rpm", "-qp", *args, str(rpm)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@pytest.fixture(scope="module")
def rpm(build) -> Path:
    path = build("build-rpm")
    assert path.name == f"direct-lvm-{__version__}-1.noarch.rpm"
    return path


def test_rpm_lists_the_module_the_command_and_the_units(rpm, units):
    files = set(rpm_query(rpm, "-l"))
    assert f"{SITE}/cc_direct_lvm.py" in files
    assert f"{SITE}/direct_lvm/cli.py" in files
    assert f"{SITE}/direct_lvm/templates/lvm-profile.profile.j2" in files
    assert f"{SITE}/direct_lvm/schema/direct_lvm.schema.json" in files
    assert "/usr/bin/direct-lvm" in files
    assert {f for f in files if f.startswith("/usr/share/man/man8/direct-lvm.8")}
    assert "/usr/share/bash-completion/completions/direct-lvm" in files
    assert "/usr/share/zsh/site-functions/_direct-lvm" in files
    for unit in units:
        assert f"/usr/lib/systemd/system/{unit}" in files


def test_rpm_requires_el9_package_names(rpm):
    requires = {r.split()[0] for r in rpm_query(rpm, "--requires")}
    assert {
        "python3",
        "python3-jinja2",
        "python3-pyyaml",
        "python3-jsonschema",
        "python3-tomlkit",
        "lvm2",
        "device-mapper-event",
        "device-mapper-persistent-data",
    } <= requires
    assert rpm_query(rpm, "--recommends") == ["cloud-init"]
    assert rpm_query(rpm, "--qf", "%{ARCH}\n") == ["noarch"]
