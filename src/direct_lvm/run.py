"""The one place that runs commands: argv lists, LANG=C, stdin closed, every command
logged in a form that can be pasted into a shell, failures raised with their stderr.

Inside `lvm_shell()` (apply's execute and verify), the lvm commands that cannot ask a
question run in one `lvm` process reading them on stdin (lvm(8)'s shell) instead of a
process each: each still logged as its own argv, each with its own exit status (the
shell's log report, see _LvmShell). Under TCG a process per command costs ~0.15 s."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

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
    if _SHELL and early is None and in_lvm_shell(argv):
        proc = _SHELL[0].run(argv, timeout)
    elif early is not None:  # started before the lock; its output is this call's
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


# ------------------------------------------------------------------ the lvm shell

# The commands that run in the shell: they never ask a question (a question would read
# the shell's next command as its answer). vgcreate, vgextend and pvcreate can ask
# "Wipe it? [y/n]" about a signature and stay separate processes, whose stdin is
# /dev/null (the answer is no); lvcreate only with --yes. A question that comes anyway
# is answered "n", as /dev/null would (_LvmShell.run).
_NEVER_ASK = frozenset({"fullreport", "lvs", "vgs", "pvs", "lvextend", "lvchange"})
# The shell splits a line at white space and knows no escapes (lvm_split): only
# arguments made of these characters are sent as they are; anything else runs alone.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-./:=%,@")
# A command profile for the shell: each command's messages and its exit status come as
# one JSON document on LVM_REPORT_FD (lvmreport(7), "log report"). The shell reads it once,
# as it starts, so it cannot be a --config; it lives where lvm looks for profiles (ours,
# rewritten when it differs; see ARCHITECTURE.md).
SHELL_PROFILE_NAME = "direct-lvm-shell"
SHELL_PROFILE = (
    "# Written by direct-lvm: the command profile of the lvm shell its apply runs\n"
    "# (LVM_COMMAND_PROFILE). Rewritten when it differs; removing it is harmless.\n"
    'report {\n\toutput_format = "json"\n}\n'
    "log {\n\treport_command_log = 1\n"
    '\tcommand_log_selection = "log_context=shell || !(log_type=status && message=success)"\n}\n'
)
_SHELL: list[_LvmShell] = []


def in_lvm_shell(argv: Sequence[str]) -> bool:
    """Whether argv would run in the lvm shell (inside lvm_shell())."""
    name = argv[1] if argv[0] == "lvm" and len(argv) > 1 else argv[0]
    if name not in _NEVER_ASK and not (name == "lvcreate" and "--yes" in argv):
        return False
    if any(a.startswith("--reportformat") for a in _shell_words(argv)):
        return False  # another format than the shell's json
    return all(a and a[0] != "#" and _PLAIN.issuperset(a) for a in argv)


def _shell_words(argv: Sequence[str]) -> list[str]:
    """argv as the shell is sent it: without `--reportformat json`, which lvm >= 2.03.17
    refuses in its shell ("cannot be used in interactive mode"); the profile's
    report/output_format says json for every command."""
    words = list(argv)
    for i in range(len(words) - 1):
        if words[i] == "--reportformat" and words[i + 1] == "json":
            return words[:i] + words[i + 2 :]
    return words


@contextmanager
def lvm_shell(profile_dir: str = "/etc/lvm/profile") -> Iterator[None]:
    """Run the lvm commands of the block that can in one lvm process. When the shell
    cannot start (no profile directory, a read-only /etc, no lvm), every command runs
    as its own process, as outside the block."""
    shell = None if _SHELL else _LvmShell.start(profile_dir)
    if shell is not None:
        _SHELL.append(shell)
    try:
        yield
    finally:
        if shell is not None:
            _SHELL.remove(shell)
            shell.close()


def _ensure_profile(profile_dir: str) -> bool:
    path = os.path.join(profile_dir, SHELL_PROFILE_NAME + ".profile")
    try:
        with open(path) as f:
            if f.read() == SHELL_PROFILE:
                return True
    except OSError:
        pass
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(SHELL_PROFILE)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        log.debug("no lvm shell: cannot write %s: %s", path, e.strerror)
        with suppress(OSError):
            os.unlink(tmp)
        return False
    return True


class _LvmShell:
    """One `lvm` with no command: it reads a command a line from stdin and, with the
    profile above, writes one JSON document per command on LVM_REPORT_FD: the report of
    a reporting command, and "log": the command's errors and warnings, then its status
    (log_context "shell": log_ret_code 1 is success, anything else is lvm's exit code).
    A command is sent only when the one before has answered."""

    def __init__(self, proc: subprocess.Popen[bytes], report_fd: int) -> None:
        self.proc = proc
        self.report_fd = report_fd
        self.closed = False

    @classmethod
    def start(cls, profile_dir: str) -> _LvmShell | None:
        if not _ensure_profile(profile_dir):
            return None
        r, w = os.pipe()
        # HOME: the shell keeps no history file of our commands
        env = dict(_env(), HOME="/dev/null", LVM_REPORT_FD=str(w),
                   LVM_COMMAND_PROFILE=SHELL_PROFILE_NAME)  # fmt: skip
        try:
            proc = subprocess.Popen(["lvm"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, env=env, pass_fds=(w,))  # fmt: skip
        except OSError as e:
            log.debug("no lvm shell: %s", e.strerror)
            os.close(r)
            return None
        finally:
            os.close(w)
        assert proc.stderr is not None
        os.set_blocking(proc.stderr.fileno(), False)
        return cls(proc, r)

    def run(self, argv: tuple[str, ...], timeout: float | None) -> subprocess.CompletedProcess[str]:
        import json
        import select
        import time

        log.debug("(in the lvm shell, pid %d)", self.proc.pid)
        assert self.proc.stdin is not None and self.proc.stderr is not None
        err_fd = self.proc.stderr.fileno()
        try:
            self.proc.stdin.write(" ".join(_shell_words(argv)).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # the shell is gone: its exit status is the answer, below
        report, raw_err = b"", b""
        deadline = None if timeout is None else time.monotonic() + timeout
        fds = [self.report_fd, err_fd]
        decoder = json.JSONDecoder()
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = select.select(fds, [], [], wait)[0]
            if not ready:
                self.kill()
                raise CommandError(argv, 124, f"timed out after {timeout} s")
            if err_fd in ready:
                chunk = os.read(err_fd, 65536)
                if not chunk:
                    fds.remove(err_fd)
                raw_err += chunk
                if raw_err.rstrip().endswith(b"[y/n]:"):  # a question: no, as /dev/null says
                    with suppress(OSError):  # gone: its exit status is the answer, below
                        self.proc.stdin.write(b"n\n")
                        self.proc.stdin.flush()
            if self.report_fd in ready:
                chunk = os.read(self.report_fd, 1 << 20)
                if not chunk:  # the shell exited: what it said is the error
                    code = self.proc.wait()
                    return subprocess.CompletedProcess(
                        argv, code or 1, "", raw_err.decode(errors="replace")
                    )
                report += chunk
                try:
                    doc, _ = decoder.raw_decode(report.decode().lstrip())
                except ValueError:
                    continue
                return _answer(argv, doc, raw_err.decode(errors="replace"))

    def kill(self) -> None:
        self.proc.kill()
        self.close()

    def close(self) -> None:
        """Its stdin closed (the shell exits), reaped, its pipes closed; once (a shell
        killed on a timeout is closed again as its lvm_shell() block ends)."""
        if self.closed:
            return
        self.closed = True
        if self.proc.stdin is not None:
            with suppress(OSError):
                self.proc.stdin.close()
        self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        os.close(self.report_fd)


def _answer(
    argv: tuple[str, ...], doc: dict[str, object], raw_err: str
) -> subprocess.CompletedProcess[str]:
    """A command's document as the process would have answered: exit status, the report
    (as `--reportformat json` prints it), errors and warnings as stderr."""
    import json

    code, said = 1, []
    entries = doc.get("log")
    for e in entries if isinstance(entries, list) else ():
        if e.get("log_context") == "shell" and e.get("log_type") == "status":
            ret = int(e.get("log_ret_code") or 5)
            code = 0 if ret == 1 else ret
        elif e.get("log_type") in ("error", "warn"):
            said.append(f"  {e.get('log_message', '')}")
    out = json.dumps({"report": doc["report"]}) if "report" in doc else ""
    err = raw_err + "".join(f"{m}\n" for m in said)
    return subprocess.CompletedProcess(argv, code, out, err)
