"""The plan's vocabulary: a Step (one command or one file, with its kind and its reason),
a Plan (the ordered steps plus what the user should know), and the PlanBuilder that the
planning code (plan.py, growth.py, runtimes/*) appends to. Pure: no I/O.

A step says what it is for in `kind`; nothing reads intent back out of argv (apply asks
"was the runtime restarted?" with `Kind.RESTART`, "what was moved aside?" with
`Kind.MOVE_ASIDE`). `action` (run or write) is what the JSON output and execute use.

For runtime authors: call `b.run(reason, *argv, kind=Kind.X)`, `b.write(reason, path,
content)`, `b.fact(text)` (what was chosen and why; shown as comments), `b.note(text)`
(a problem the user should know about; a warning, and a WARNING at boot: use it only
for real faults). The reason says why the step is needed, from what was observed, in
words a person can check ("docker is not running", not "restart needed")."""

from __future__ import annotations

import shlex

from ._compat import StrEnum
from ._record import Record, record

TYPE_CHECKING = False  # mypy reads it as True; `typing` stays off the hot path
if TYPE_CHECKING:
    from typing import Any


class Action(StrEnum):
    RUN = "run"
    WRITE = "write"


class Kind(StrEnum):
    """What a step is for. Every step carries one, set where it is planned."""

    WIPE = "wipe"  # wipefs of a device before it is used (wipe_signatures)
    LVM = "lvm"  # a PV, VG or LV created, changed, extended or removed
    MKFS = "mkfs"  # a new filesystem on our LV
    GROW_FS = "grow-fs"  # a mounted filesystem grown to its LV
    FILE = "file"  # a managed file written (the only kind with Action.WRITE)
    REMOVE = "remove"  # a file of ours removed (reset)
    RELOAD = "reload"  # systemctl daemon-reload
    UNIT = "unit"  # a unit that is not the runtime (a mount unit) enabled/started/...
    STOP = "stop"  # the runtime stopped (before a takeover, a remount or a reset)
    START = "start"  # the runtime (re)started without waiting (--no-block, at boot)
    RESTART = "restart"  # the runtime restarted and waited for: verify checks it after
    MOVE_ASIDE = "move-aside"  # existing storage renamed to a backup, never deleted;
    #                            argv[-1] is where it went


# Files are written 0644: every managed file is a config, a unit or a record.
FILE_MODE = 0o644


@record
class Step(Record):
    kind: Kind
    reason: str
    argv: tuple[str, ...] = ()
    path: str = ""
    content: str = ""

    @property
    def action(self) -> Action:
        return Action.WRITE if self.kind is Kind.FILE else Action.RUN

    @property
    def kept_at(self) -> str | None:
        """A move-aside step: where the earlier storage was kept."""
        return self.argv[-1] if self.kind is Kind.MOVE_ASIDE and self.argv else None

    def shell(self) -> str:
        """The step as a shell line a person can review or paste."""
        if self.action is Action.RUN:
            return shlex.join(self.argv)
        return f"cat > {shlex.quote(self.path)} <<'EOF'\n{self.content}EOF"

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"action": str(self.action), "reason": self.reason}
        if self.action is Action.RUN:
            d["argv"] = list(self.argv)
        else:
            d.update(path=self.path, content=self.content, mode=oct(FILE_MODE))
        d["shell"] = self.shell()
        return d


def run_step(reason: str, *argv: str, kind: Kind) -> Step:
    if kind is Kind.FILE:
        raise ValueError("a run step cannot have kind FILE")
    return Step(kind, reason, argv=tuple(argv))


def write_step(reason: str, path: str, content: str) -> Step:
    return Step(Kind.FILE, reason, path=path, content=content)


@record
class Plan(Record):
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()  # problems the user should know about (printed as warnings)
    facts: tuple[str, ...] = ()  # what was chosen and why
    # how many of the steps the runtime's plan added (its files, reload, restart): the
    # version gate, which costs a process, runs only when there are some
    runtime_steps: int = 0

    @property
    def empty(self) -> bool:
        return not self.steps

    def of_kind(self, *kinds: Kind) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.kind in kinds)

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": not self.empty,
            "steps": [s.to_json() for s in self.steps],
            "notes": list(self.notes),
            "facts": list(self.facts),
        }


class PlanBuilder:
    """Collects steps, notes and facts in order; `build()` freezes them into a Plan. (A
    plain class: a dataclass would compile three methods at import, issue 13.)"""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.notes: list[str] = []
        self.facts: list[str] = []

    def run(self, reason: str, *argv: str, kind: Kind) -> None:
        self.steps.append(run_step(reason, *argv, kind=kind))

    def write(self, reason: str, path: str, content: str) -> None:
        self.steps.append(write_step(reason, path, content))

    def fact(self, text: str) -> None:
        self.facts.append(text)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def has(self, *kinds: Kind) -> bool:
        return any(s.kind in kinds for s in self.steps)

    def build(self, runtime_steps: int = 0) -> Plan:
        return Plan(tuple(self.steps), tuple(self.notes), tuple(self.facts), runtime_steps)
