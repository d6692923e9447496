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
    try:
        proc = subprocess.run(
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
    result = Result(argv, proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode not in ok_codes:
        raise CommandError(argv, proc.returncode, proc.stderr or proc.stdout)
    return result
