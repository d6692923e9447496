"""What direct-lvm's two hot paths import, and how long that takes: a benchmark (it prints,
it asserts nothing).

- version: `direct-lvm --version` (cli.main(["--version"])).
- converged: what a converged boot or `direct-lvm apply` imports before and while it
  works, without touching this host's disks: the cloud-init module (cloud-init's own
  `cloudinit.settings` stubbed, as cloud-init has it loaded already), the CLI and the
  boot path, then the render record turned on, the config read and validated
  (spec.load_file: the record holds its parse) and the runtime's files rendered through
  the record (core.desired_files), as a converged run does.
  The probes (lvm, systemctl) are commands, not imports; their modules are imported.
- floor: the standard library any converged run needs (no budget): measured
  beside the others because it moves with the host's load as they do.

Each path runs in a fresh `python -X importtime` process (after one warm-up run that
compiles the .pyc files and fills the render record); the time is the sum of the
top-level imports' cumulative times (the interpreter's own start-up imports included),
the median and the minimum of --runs runs (on a busy host the minimum is the closer
to an idle one). `modules` names any of jinja2, jsonschema and tomlkit the path imported
(a converged docker run needs none of them). --tree measures another checkout (its src/
and cloudinit_module/ first on PYTHONPATH), e.g. a worktree of an older commit.

  .venv/bin/python scripts/bench-imports.py [--runs 9] [--json] [--tree DIR]

cpu ms: the median CPU time (time.process_time) of the same code in --runs further
processes without -X importtime, from after the interpreter's start: the figure a busy
host distorts least.

Output: a table (path, budget ms, median ms, min ms, cpu ms, runs, within budget,
modules); with --json one JSON line instead:
  {"version": {"budget_ms": 30, "median_ms": .., "min_ms": .., "cpu_ms": .., "runs": N,
   "ok": true, "modules": []}, "floor": {"budget_ms": null, ..., "ok": null},
   "converged": {...}}
(ok: the median within the budget). Exit 0 unless a measurement itself failed."""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGETS_MS: dict[str, float | None] = {"version": 30.0, "converged": 60.0, "floor": None}
WATCHED = ("jinja2", "jsonschema", "tomlkit")
CONFIG = "direct_lvm:\n  devices: [/dev/vdb]\n"
EXEC_START = "/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock"

# The standard library that any converged run needs (the engine logs, runs commands,
# holds dataclasses, paths and JSON; PyYAML and typing were in it until a003bd1: the
# render record now holds the config's parse, and typing is for mypy only): not ours to
# cut, but it varies with the host's load as ours does, so it is measured beside them.
FLOOR_CHILD = """
import dataclasses, fcntl, json, logging, pathlib, re, shlex, subprocess
"""

VERSION_CHILD = """
from direct_lvm.cli import main
try:
    main(["--version"])
except SystemExit:
    pass
"""

# argv: the config file, the render record
CONVERGED_CHILD = f"""
import sys
cloudinit = type(sys)("cloudinit")
settings = type(sys)("cloudinit.settings")
settings.PER_ALWAYS = "always"
cloudinit.settings = settings
sys.modules["cloudinit"], sys.modules["cloudinit.settings"] = cloudinit, settings
import cc_direct_lvm
import direct_lvm.bootpath
import direct_lvm.cli
from direct_lvm import core, render, spec
# as apply and the boot path do: the record on, then the config read (from this tree's
# a003bd1 the record also holds the config text's parse, and no PyYAML is imported)
getattr(render, "remember", lambda path: None)(sys.argv[2])  # (older trees: no record)
s = spec.load_file(sys.argv[1])
try:
    try:
        from direct_lvm.runtimes._systemd import ServiceState
    except ImportError:  # (older trees)
        from direct_lvm.runtime import ServiceState
    docker = ServiceState("docker.service", True, (20, 10), exec_start={EXEC_START!r})
    if "state" in core.desired_files.__code__.co_varnames[:2]:  # (issue 11: a RuntimeState)
        from direct_lvm.observed import RuntimeState
        files = core.desired_files(s, RuntimeState(service=docker))
    else:
        files = core.desired_files(s, docker)
except (ImportError, AttributeError, TypeError) as e:  # the engine moved: say so
    print("bench-imports: core.desired_files unavailable:", e, file=sys.stderr)
    files = {{"profile": render.render("lvm-profile.profile.j2", vg=s.vg, pool=s.pool,
                                       threshold=80, percent=20)}}
assert files
"""

LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")


def measure(code: str, args: list[str], env: dict[str, str]) -> tuple[float, set[str]]:
    """(ms of imports, the top-level packages imported) of one fresh process."""
    argv = [sys.executable, "-X", "importtime", "-c", code, *args]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench-imports: the child failed:\n{proc.stderr[-3000:]}")
    total_us = 0
    packages = set()
    for line in proc.stderr.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        packages.add(m.group(4).split(".")[0])
        if not m.group(3):  # a top-level import: its cumulative time holds its children's
            total_us += int(m.group(2))
    return total_us / 1000, packages


CPU_WRAP = """import time as _time
_cpu = _time.process_time()
{code}
import sys as _sys
_sys.stderr.write("bench-imports-cpu %.3f\\n" % ((_time.process_time() - _cpu) * 1000))
"""


def cpu(code: str, args: list[str], env: dict[str, str]) -> float:
    """CPU ms the path's code took after the interpreter started, without importtime: a
    busy host stretches it much less than wall time."""
    argv = [sys.executable, "-c", CPU_WRAP.format(code=code), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("bench-imports-cpu ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"bench-imports: the child failed:\n{proc.stderr[-3000:]}")
    return float(lines[-1].split()[1])


def bench(
    name: str, code: str, args: list[str], env: dict[str, str], runs: int
) -> dict[str, object]:
    measure(code, args, env)  # warm-up: .pyc files, the render record
    times, seen = [], set()
    for _ in range(runs):
        ms, packages = measure(code, args, env)
        times.append(ms)
        seen |= packages
    cpus = [cpu(code, args, env) for _ in range(runs)]
    median = statistics.median(times)
    budget = BUDGETS_MS[name]
    return {
        "budget_ms": budget,
        "median_ms": round(median, 1),
        "min_ms": round(min(times), 1),
        "cpu_ms": round(statistics.median(cpus), 1),
        "runs": runs,
        "ok": None if budget is None else median <= budget,
        "modules": sorted(p for p in WATCHED if p in seen),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json", action="store_true", help="one JSON line instead of a table")
    parser.add_argument(
        "--tree",
        type=Path,
        default=ROOT,
        help="measure another checkout (its src/ and cloudinit_module/ first on the path), "
        "e.g. a worktree of an older commit for a before/after",
    )
    opts = parser.parse_args()
    env = dict(os.environ)
    # as installed (Debian byte-compiles at install): the warm-up run writes the .pyc files
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    tree = opts.tree.resolve()
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tree / "src"), str(tree / "cloudinit_module"), *filter(None, [env.get("PYTHONPATH")])]
    )
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG)
        record = str(Path(tmp) / "rendered.json")
        results = {
            "version": bench("version", VERSION_CHILD, [], env, opts.runs),
            "floor": bench("floor", FLOOR_CHILD, [], env, opts.runs),
            "converged": bench("converged", CONVERGED_CHILD, [str(config), record], env, opts.runs),
        }
    if opts.json:
        print(json.dumps(results))
        return 0
    print(f"{'imports':<11} {'budget ms':>9} {'median ms':>9} {'min ms':>7} {'cpu ms':>7} "
          f"{'runs':>4}  within  jinja2/jsonschema/tomlkit")  # fmt: skip
    for name, r in results.items():
        budget = "-" if r["budget_ms"] is None else f"{r['budget_ms']:.0f}"
        within = {None: "-", True: "yes", False: "NO"}[r["ok"]]  # type: ignore[index]
        print(f"{name:<11} {budget:>9} {r['median_ms']:>9.1f} {r['min_ms']:>7.1f} "
              f"{r['cpu_ms']:>7.1f} "
              f"{r['runs']:>4}  {within:<6}  "
              f"{', '.join(r['modules']) or 'none'}")  # type: ignore[arg-type]  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
