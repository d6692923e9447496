"""Runs inside the guest (pytest + testinfra's local backend), as root, in file order.
bullseye has no python3-testinfra: there the `host` fixture is LocalHost below, the
part of testinfra's API the in-guest suites use, on plain subprocess."""

import json
import os
import subprocess
from pathlib import Path

import pytest

try:
    import testinfra  # noqa: F401  (its pytest plugin provides `host`)
except ImportError:

    class _Result:
        def __init__(self, proc):
            self.rc = proc.returncode
            self.exit_status = proc.returncode
            self.stdout = proc.stdout
            self.stderr = proc.stderr

    class _File:
        def __init__(self, path):
            self._path = Path(path)

        @property
        def exists(self):
            return self._path.exists()

        @property
        def is_directory(self):
            return self._path.is_dir()

        @property
        def content_string(self):
            return self._path.read_text()

    class LocalHost:
        """testinfra's host.run / check_output / file, for the local machine."""

        def run(self, command):
            proc = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True)
            return _Result(proc)

        def check_output(self, command):
            r = self.run(command)
            assert r.rc == 0, f"{command!r} exited {r.rc}: {r.stderr}"
            return r.stdout.rstrip("\r\n")

        def file(self, path):
            return _File(path)

    @pytest.fixture(scope="session")
    def host():
        return LocalHost()


CONFIGS = os.environ.get("DL_CONFIGS", "/job/configs")
FACTS = json.loads(os.environ.get("DL_FACTS", "{}"))


@pytest.fixture(scope="session")
def facts():
    return FACTS


@pytest.fixture
def cfg():
    return lambda name: f"{CONFIGS}/{name}.yaml"


@pytest.fixture
def lvs(host):
    def report(lv, fields="lv_attr,chunk_size,zero,lv_profile,seg_monitor,lv_tags,lv_uuid"):
        out = host.check_output(
            f"lvs --reportformat json --units b --nosuffix --binary -o {fields} {lv}"
        )
        return json.loads(out)["report"][0]["lv"][0]

    return report


@pytest.fixture(scope="module")
def cloud_init_settled(host):
    """cloud-init has finished every stage and dockerd answers (polled, not slept)."""
    from cloudinit_helpers import wait_for_cloud_init, wait_for_docker

    wait_for_cloud_init(host)
    wait_for_docker(host)


def pytest_runtest_logreport(report):
    """A failure's report also goes to the console, so it shows on the host while the
    guest still runs (the junit report only comes back when the boot ends)."""
    if report.failed:
        try:
            with open("/dev/console", "w") as console:
                for line in str(report.longrepr).splitlines()[-60:]:
                    console.write(f"dl-test: {report.nodeid}: {line[:900]}\n")
        except OSError:
            pass
