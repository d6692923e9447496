"""Issue: core engine proven on real LVM. One guest boot runs in_guest/test_core.py, then
in_guest/test_monitoring.py (status --check's codes, apply --json, the Prometheus
textfile); each in-guest test is reported here under its own name, and the Prometheus
outputs the guest saved are parsed here with prometheus_client."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from guestkit.vm import Disk, blank_disk

from .harness import in_guest_tests, run_suites

pytestmark = pytest.mark.guest


def ext4_disk(path: Path, content: bytes) -> str:
    """A 64 MiB disk holding an ext4 filesystem with one file; returns the file's sha256."""
    src = path.with_suffix(".d")
    src.mkdir()
    (src / "precious.txt").write_bytes(content)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "precious", "-d", str(src), str(path), "64M"],
                   check=True)  # fmt: skip
    return hashlib.sha256(content).hexdigest()


@pytest.fixture(scope="module")
def core_run(guest_image, deb, tmp_path_factory):
    work = tmp_path_factory.mktemp("core")
    data = blank_disk(work / "data1.raw", "4G")
    missed = blank_disk(work / "missed.raw", "1G")  # an ext4 udev does not see, made in the guest
    sha = ext4_disk(work / "ext4.raw", b"customer data that must survive\n" * 1000)
    return run_suites(
        guest_image, deb, work, ["test_core", "test_monitoring"],
        disks=[Disk(data, serial="dl-data1"), Disk(work / "ext4.raw", serial="dl-ext4"),
               Disk(missed, serial="dl-missed")],
        facts={"precious_sha256": sha},
    )  # fmt: skip


@pytest.mark.parametrize("name", in_guest_tests("test_core"))
def test_core(core_run, name):
    core_run.check(name)


@pytest.mark.parametrize("name", in_guest_tests("test_monitoring"))
def test_monitoring(core_run, name):
    core_run.check(name)


def _metrics(core_run, name):
    from prometheus_client.parser import text_string_to_metric_families

    path = core_run.result.out_dir / f"metrics-{name}.prom"
    assert path.exists(), f"the guest saved no {path.name}: {core_run.result.summary()}"
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(path.read_text()):
        assert family.type == "gauge" and family.documentation, family.name
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


DOCKER = (("pool", "thinpool"), ("vg", "docker"))
FULLVG = (("pool", "pool"), ("vg", "fullvg"))


def test_prometheus_output_of_the_guest_parses_on_the_host(core_run):
    healthy = _metrics(core_run, "healthy")
    assert healthy["direct_lvm_pool_check_state"] == {DOCKER: 0}
    assert 0 < healthy["direct_lvm_pool_data_percent"][DOCKER] < 80
    assert healthy["direct_lvm_pool_monitored"][DOCKER] == 1
    assert healthy["direct_lvm_pool_autoextend_steps_left"][DOCKER] >= 1
    assert healthy["direct_lvm_pool_size_bytes"][DOCKER] > 2 << 30
    assert healthy["direct_lvm_vg_free_bytes"][(("vg", "docker"),)] > 0
    assert healthy["direct_lvm_last_apply_success"][()] == 1
    assert healthy["direct_lvm_last_apply_timestamp_seconds"][()] > 1.6e9
    warning = _metrics(core_run, "warning")
    assert warning["direct_lvm_pool_check_state"] == {DOCKER: 0, FULLVG: 1}
    assert warning["direct_lvm_pool_autoextend_steps_left"][FULLVG] == 0
    assert warning["direct_lvm_pool_data_percent"][FULLVG] >= 80
    critical = _metrics(core_run, "critical")
    assert critical["direct_lvm_pool_check_state"] == {DOCKER: 0, FULLVG: 2}
    assert critical["direct_lvm_pool_data_percent"][FULLVG] == 100
    service = _metrics(core_run, "service")  # written by direct-lvm-metrics.service
    assert service["direct_lvm_pool_check_state"] == {DOCKER: 0}


def test_guest_verdict_is_the_in_guest_pytest_status(core_run):
    """The guest reports its own verdict; it must agree with the per-test outcomes."""
    failed = [n for n, (o, _) in core_run.outcomes.items() if o != "passed"]
    assert core_run.result.verdict == (1 if failed else 0), core_run.result.summary()
