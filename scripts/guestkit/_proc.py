"""Subprocess and progress-logging helpers shared by guestkit modules."""

from __future__ import annotations

import fcntl
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

_T0 = time.monotonic()


def log(message: str) -> None:
    """Print one progress line to stderr, prefixed with seconds since import."""
    print(f"[guestkit {time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Log the start and the elapsed seconds of a named phase."""
    start = time.monotonic()
    log(f"{name}: start")
    try:
        yield
    except BaseException:
        log(f"{name}: FAILED after {time.monotonic() - start:.1f}s")
        raise
    log(f"{name}: done in {time.monotonic() - start:.1f}s")


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    log_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    input_bytes: bytes | None = None,
    check: bool = True,
    capture: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv (never through a shell), logging it with shlex.join.

    Output goes to log_file when given (appended), is captured when capture is
    true, and otherwise is inherited. On failure with a log_file, the log tail is
    printed before CalledProcessError propagates.
    """
    args = [os.fspath(a) for a in argv]
    log(f"$ {shlex.join(args)}")
    full_env = {**os.environ, **env} if env else None
    if log_file is not None:
        with log_file.open("ab") as fh:
            proc = subprocess.run(args, stdout=fh, stderr=subprocess.STDOUT, env=full_env,
                                  input=input_bytes, check=False)
    else:
        proc = subprocess.run(args, capture_output=capture, env=full_env, input=input_bytes,
                              check=False)
    if check and proc.returncode != 0:
        if log_file is not None:
            log(f"command failed (rc={proc.returncode}); tail of {log_file}:\n{tail(log_file)}")
        elif capture:
            log(f"command failed (rc={proc.returncode}): {proc.stderr.decode(errors='replace')}")
        raise subprocess.CalledProcessError(proc.returncode, args, proc.stdout, proc.stderr)
    return proc


def tail(path: Path, lines: int = 40) -> str:
    """Return the last lines of a text file (empty string if missing)."""
    try:
        data = path.read_bytes()[-256 * 1024:]
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on path for the duration (cache builds of one kind at a time)."""
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
