"""The one place that runs commands: argv lists, LANG=C, stdin closed, every command
logged in a form that can be pasted into a shell, failures raised with their stderr."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Sequence

from ._record import Record, record
from .errors import CommandError

log = logging.getLogger("direct_lvm")

_ENV_KEEP = ("PATH", "HOME", "TERM", "SYSTEMD_LOG_LEVEL")


@record
class Result(Record):
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def _env() -> dict[str, str]:
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    # C locale for parseable output; LVM_SUPPRESS_FD_WARNINGS for inherited fds in cloud-init.
    env.update(LANG="C", LC_ALL="C", LVM_SUPPRESS_FD_WARNINGS="1")
    return env


# A read-only command started before the lock was taken (start_early), kept until run()
# is asked for the same argv once the lock's generation showed that no other run held
# the lock since (claim_early); anything else stops it (discard_early).
_EARLY: list[tuple[tuple[str, ...], subprocess.Popen[str], int]] = []
_CLAIMED: list[bool] = []


def start_early(argv: Sequence[str], generation: int) -> None:
    """Start a read-only argv now, for the first run() of the same argv after
    claim_early(generation) (see _lock.py). Nothing is logged yet: run() logs the
    command when it takes the output. A command that cannot start is left to run()."""
    if _EARLY:
        return
    try:
        proc = subprocess.Popen(
            tuple(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
    except OSError:
        return
    _EARLY.append((tuple(argv), proc, generation))


def claim_early(generation: int) -> None:
    """Under the lock, whose generation is now `generation`: keep the early command when
    the lock's generation is the one it started at, else stop it."""
    if not _EARLY:
        return
    if _EARLY[0][2] == generation:
        _CLAIMED[:] = [True]
    else:
        log.debug("another run held the lock since %s started: stopped, to run again "
                  "under the lock", _EARLY[0][0][0])  # fmt: skip
        discard_early()


def discard_early() -> None:
    """Stop and reap an early command that was not used (nothing of it is kept)."""
    _CLAIMED.clear()
    while _EARLY:
        _, proc, _ = _EARLY.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _take_early(argv: tuple[str, ...]) -> subprocess.Popen[str] | None:
    if not (_EARLY and _CLAIMED and _EARLY[0][0] == argv):
        return None
    _CLAIMED.clear()
    return _EARLY.pop()[1]


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    ok_codes: Sequence[int] = (0,),
    changes: bool = False,
    timeout: float | None = None,
) -> Result:
    """Run argv. `changes` marks commands that modify the system (logged at INFO;
    reads are logged at DEBUG). With check, an exit code outside ok_codes raises."""
    argv = tuple(argv)
    if not argv or not all(isinstance(a, str) for a in argv):
        raise TypeError(f"argv must be a non-empty list of str: {argv!r}")
    log.log(logging.INFO if changes else logging.DEBUG, "+ %s", shlex.join(argv))
    early = _take_early(argv)
    if early is not None:  # started before the lock; its output is this call's
        log.debug("(started before the imports; no other run held the lock since)")
        try:
            out, err = early.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as e:
            early.kill()
            early.communicate()
            raise CommandError(argv, 124, f"timed out after {e.timeout} s") from None
        proc = subprocess.CompletedProcess(argv, early.returncode, out, err)
    else:
        proc = _run(argv, timeout)
    result = Result(argv, proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode not in ok_codes:
        raise CommandError(argv, proc.returncode, proc.stderr or proc.stdout)
    return result


def _run(argv: tuple[str, ...], timeout: float | None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=_env(),
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise CommandError(argv, 127, f"{argv[0]}: command not found") from None
    except subprocess.TimeoutExpired as e:
        raise CommandError(argv, 124, f"timed out after {e.timeout} s") from None
