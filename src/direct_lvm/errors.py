"""Errors with a message that names the value and a hint that names the fix."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any


class DirectLvmError(Exception):
    """A failure the user can act on. exit_code is the CLI's exit status."""

    exit_code = 1

    def __init__(
        self, message: str, hint: str | None = None, *, field: str | None = None, **known: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # for `--json` errors: the config field (e.g. direct_lvm.vg) and, when known, the
        # offending value (`value=`, which may be None), and each problem of a config
        # with several
        self.field = field
        self.details: dict[str, Any] = known

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  fix: {self.hint}"
        return self.message


class ConfigError(DirectLvmError):
    """The configuration is wrong or asks for something unsafe: exit 2, nothing changed."""

    exit_code = 2


class RefusedError(ConfigError):
    """A device named by the config is not safe to use; it was left untouched."""


class CommandError(DirectLvmError):
    """A command failed; apply stops at the first one."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(
            f"command failed with exit code {returncode}: {shlex.join(self.argv)}"
            + (f"\n{self.stderr}" if self.stderr else "")
        )


class VerifyError(DirectLvmError):
    """Apply finished its steps but the re-probed system does not match the config."""
