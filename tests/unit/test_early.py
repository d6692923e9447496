"""The early lvm report (early.py): the lock's generation decides whether a report
started before the lock is used, and run() hands its output to the same argv once."""

import threading

import pytest

from direct_lvm import _lock, cli, run


class FakeProc:
    """Stands for the early Popen (unit tests start no process): its output, and
    whether it was stopped."""

    def __init__(self, out="report", rc=0):
        self.out, self.returncode, self.killed, self.reaped = out, rc, False, False

    def poll(self):
        return None if not self.killed and not self.reaped else self.returncode

    def kill(self):
        self.killed = True

    def communicate(self, timeout=None):
        self.reaped = True
        return self.out, ""


ARGV = ("lvm", "fullreport", "--reportformat", "json")


@pytest.fixture
def early(monkeypatch):
    monkeypatch.setattr(run, "_EARLY", [])
    monkeypatch.setattr(run, "_CLAIMED", [])

    def start(generation, proc=None):
        proc = proc or FakeProc()
        run._EARLY.append((ARGV, proc, generation))
        return proc

    return start


def test_the_generation_rises_with_every_holder_and_is_none_while_held(tmp_path):
    lock = str(tmp_path / "lock")
    assert _lock.idle_generation(lock) == 0
    with _lock.exclusive(lock) as g:
        assert g == 0
        assert _lock.idle_generation(lock) is None  # held (another open file description)
    assert _lock.idle_generation(lock) == 1
    with pytest.raises(RuntimeError), _lock.exclusive(lock):
        raise RuntimeError("a failed apply raises it too")
    assert _lock.idle_generation(lock) == 2


def test_the_lock_is_not_opened_through_a_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    lock = tmp_path / "lock"
    lock.symlink_to(victim)
    with pytest.raises(OSError), _lock.exclusive(str(lock)):
        pass
    assert _lock.idle_generation(str(lock)) is None
    assert victim.read_text() == "keep\n"


def test_a_waiting_run_sees_the_generation_the_holder_left(tmp_path):
    lock = str(tmp_path / "lock")
    seen = []
    with _lock.exclusive(lock):
        t = threading.Thread(target=lambda: seen.append(_lock.exclusive(lock).__enter__()))
        t.start()
        assert seen == []  # it cannot have the lock while this run holds it
    t.join(10)
    assert seen == [1]


def test_a_claimed_early_report_is_the_first_run_of_its_argv_only(early):
    proc = early(5)
    run.claim_early(5)
    result = run.run(ARGV)
    assert result.stdout == "report" and proc.reaped and not proc.killed
    with pytest.raises(AssertionError, match="must not run commands"):
        run.run(ARGV)  # the verifying report runs again, as a command of its own


def test_another_runs_generation_stops_the_early_report(early):
    proc = early(5)
    run.claim_early(6)  # someone held the lock since the report started
    assert proc.killed and proc.reaped and run._EARLY == []
    with pytest.raises(AssertionError, match="must not run commands"):
        run.run(ARGV)


def test_an_unclaimed_early_report_is_not_used(early):
    proc = early(5)
    with pytest.raises(AssertionError, match="must not run commands"):
        run.run(ARGV)  # no claim: not under the lock
    run.discard_early()
    assert proc.killed and proc.reaped and run._EARLY == []


def test_a_failed_early_report_fails_as_its_command_would(early):
    early(1, FakeProc(out="", rc=5))
    run.claim_early(1)
    with pytest.raises(run.CommandError) as e:
        run.run(ARGV)
    assert e.value.returncode == 5


@pytest.mark.parametrize(
    ("argv", "starts"),
    [
        (["apply", "/c.yaml"], True),
        (["-v", "apply", "--no-restart", "/c.yaml"], True),
        (["apply", "--dry-run", "/c.yaml"], False),
        (["apply", "-h"], False),
        (["boot"], False),  # direct-lvm.service: udev settles before its first lvm call
        (["plan", "/c.yaml"], False),
        (["status"], False),
        ([], False),
    ],
)
def test_only_apply_starts_the_report_early(argv, starts):
    assert cli._starts_early(argv) is starts
