"""The harness' own logic (no guest is booted): which failed boots it retries."""

from __future__ import annotations

from pathlib import Path

import pytest

from guestkit.vm import JobResult

from .harness import early_kernel_oops

OOPS = "[    3.1] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\n[    3.1] RIP: set_next_task_fair+0x4\n"


def result(
    tmp_path: Path, console: str, *, verdict: int | None = None, job_start_s: float | None = None
) -> JobResult:
    (tmp_path / "console.log").write_text(console)
    return JobResult(
        verdict=verdict,
        qemu_status=0,
        duration_s=1.0,
        out_dir=tmp_path,
        console_log=tmp_path / "console.log",
        timed_out=False,
        job_start_s=job_start_s,
    )


def test_an_oops_before_the_job_is_retried(tmp_path: Path) -> None:
    assert early_kernel_oops(result(tmp_path, OOPS))


@pytest.mark.parametrize(
    ("console", "kw"),
    [
        (OOPS, {"job_start_s": 42.0}),  # the job had started: a real result
        ("Starting direct-lvm.service...\n" + OOPS, {}),  # our code had run
        ("[  900.0] reached the timeout\n", {}),  # no oops: a real failure
        (OOPS, {"verdict": 0}),  # passed anyway
    ],
)
def test_any_later_failure_is_a_result(tmp_path: Path, console: str, kw: dict[str, object]) -> None:
    assert not early_kernel_oops(result(tmp_path, console, **kw))
