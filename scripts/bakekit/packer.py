"""Run Packer on packer/: argv lists only, output streamed line by line with the elapsed
time, and packer's own error lines kept for the exception when it fails."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "packer"
TAIL_LINES = 25
# Packer's own failure lines ("Error: ..." diagnostics, "==> x: Error ...", "Build 'x'
# errored ...", "--> x: ..."); the guest's output is indented, so never matches.
_ERROR_LINE = re.compile(r"^(Error|-->|\S.*(errored|[Ee]rror|failed|non-zero))")


class PackerError(RuntimeError):
    """packer exited non-zero; str() holds its error lines and the tail of its output."""

    def __init__(
        self, argv: Sequence[str], returncode: int, errors: list[str], tail: list[str]
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.errors = errors
        self.tail = tail
        text = [f"{shlex.join(argv)} exited {returncode}"]
        if errors:
            text += ["packer's errors:", *(f"  {e}" for e in errors)]
        text += ["last lines:", *(f"  {t}" for t in tail)]
        super().__init__("\n".join(text))


def var_args(variables: Mapping[str, str | int | Sequence[str]]) -> list[str]:
    """-var arguments; lists become HCL lists (JSON syntax is valid HCL)."""
    args = []
    for name, value in variables.items():
        if isinstance(value, str):
            text = value
        elif isinstance(value, int):
            text = str(value)
        else:
            text = json.dumps(list(value))
        args += ["-var", f"{name}={text}"]
    return args


def packer_env(work: Path) -> dict[str, str]:
    """No telemetry; caches, temporary files (packer 1.6 leaves its cd_files staging
    directories behind) and the debug log under work (the full log for post-mortems)."""
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "TMPDIR": str(work / "tmp"),
        "CHECKPOINT_DISABLE": "1",
        "PACKER_CACHE_DIR": str(work / "packer_cache"),
        "PACKER_LOG": "1",
        "PACKER_LOG_PATH": str(work / "packer-debug.log"),
        "PACKER_NO_COLOR": "1",
    }


def stream(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    echo: Callable[[str], None] | None = None,
) -> list[str]:
    """Run argv, echo each output line with the elapsed seconds, return all lines.

    Raises PackerError with the error lines and the tail when the exit code is not 0.
    """
    say = echo or _stderr
    start = time.monotonic()
    say(f"[{0.0:7.1f}s] $ {shlex.join(argv)}")
    lines: list[str] = []
    errors: list[str] = []
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    log = log_file.open("a") if log_file else None
    try:
        with subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
            errors="replace",
            bufsize=1,
        ) as proc:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                say(f"[{time.monotonic() - start:7.1f}s] {line}")
                if log:
                    log.write(line + "\n")
                lines.append(line)
                tail.append(line)
                if _ERROR_LINE.match(line):
                    errors.append(line.strip())
            returncode = proc.wait()
    finally:
        if log:
            log.close()
    say(f"[{time.monotonic() - start:7.1f}s] exit {returncode}")
    if returncode != 0:
        raise PackerError(argv, returncode, errors[-15:], list(tail))
    return lines


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build(
    packer: str,
    variables: Mapping[str, str | int | Sequence[str]],
    work: Path,
    *,
    template: Path = TEMPLATE_DIR,
    force: bool = False,
    echo: Callable[[str], None] | None = None,
) -> list[str]:
    """`packer build` of template with variables; returns packer's output lines."""
    argv = [
        packer,
        "build",
        "-color=false",
        *(["-force"] if force else []),
        *var_args(variables),
        str(template),
    ]
    return stream(argv, env=packer_env(work), log_file=work / "packer.log", echo=echo)


def validate(
    packer: str,
    variables: Mapping[str, str | int | Sequence[str]],
    work: Path,
    *,
    template: Path = TEMPLATE_DIR,
) -> list[str]:
    argv = [packer, "validate", *var_args(variables), str(template)]
    return stream(argv, env=packer_env(work), echo=lambda _line: None)


def fmt_check(packer: str, template: Path = TEMPLATE_DIR) -> list[str]:
    return stream([packer, "fmt", "-check", "-diff", str(template)], echo=lambda _line: None)
