"""direct-lvm's one benchmark: prints one markdown table with ratios (issue 13).

Three guest boots of one bookworm root (guest side: scripts/guest-jobs/bench_guest.py),
then the host's import budgets:

1. compare: installs the .deb and bakes (image-setup; cloud-init is off in this boot),
   then N rounds (default 3) in rotating order on identical blank 4 GiB disks: the hand
   procedure (with its docker drop-in and daemon-reload; docker not restarted) vs
   `direct-lvm apply --no-restart`, then a no-op apply, plan and status on the converged
   state. Then what one lvm process costs (start vs device scan), the create and grow
   sequences as separate processes vs one `lvm FILE`, and what a converged run imports
   (-X importtime, captured for step 5).
2. ci1: a first boot through cloud-init (NoCloud seed, one 4 GiB disk): the direct_lvm
   module's event and the init stage from `cloud-init analyze dump`.
3. ci2: the same disks again (converged). Then, in the same boot (its measurement is
   taken), the scale rows: 34 sparse qcow2 disks hot-plugged on virtio-scsi, and apply,
   no-op and status on 1, 8, 32 disks of 4 GiB and on one 1 TiB and one 64 TiB disk (the
   64 TiB one twice: with zero_metadata: false, then the default), one VG after another
   (vgremove + pvremove in one lvm process between); containerd's
   devmapper snapshotter on the 64 TiB pool. (`--skip cloudinit`: a boot of their own.)
4. host: `python -X importtime` for `direct-lvm --version` and for the converged paths
   (the modules boot 1 saw imported), median of several runs.

It asserts no timing. It exits 1 when a measurement failed (a command that should
succeed did not, a boot did not report), after printing what it has."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from guestkit.deb import build_deb  # noqa: E402
from guestkit.image import build_image  # noqa: E402
from guestkit.jobdisk import nocloud_seed  # noqa: E402
from guestkit.model import GuestImage  # noqa: E402
from guestkit.qmp import hotplug_scsi_disk  # noqa: E402
from guestkit.vm import Disk, JobResult, blank_disk, qcow2_disk, start_job  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
JOBS = ROOT / "scripts" / "guest-jobs"
T0 = time.monotonic()
GIB, TIB = 1 << 30, 1 << 40
BUDGET_VERSION_MS, BUDGET_CONVERGED_MS = 30.0, 60.0
GOAL_APPLY, GOAL_NOOP, GOAL_CONVERGED_S = 0.6, 0.25, 0.5
IMPORT_RUNS = 7
MARK = "DL-IMPORT-MARK"
PLUG_MARKER = "DL-BENCH-PLUG-DISKS"


def progress(message: str) -> None:
    print(f"[bench {time.monotonic() - T0:6.1f}s] {message}", flush=True)


@dataclass
class Boot:
    name: str
    ok: bool = False
    wall_s: float = 0.0
    to_job_s: float | None = None
    summary: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    out: Path | None = None

    def group(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("group") == name]


def run_boot(name: str, mode: str, image: GuestImage, work: Path, deb_dir: Path, *,
             disks: list[Disk], root: Path, cmdline_extra: str = "", env: str = "",
             hotplug: list[Disk] | None = None, timeout: float = 1800) -> Boot:  # fmt: skip
    """One guest boot running bench_guest.py MODE. hotplug: scsi disks plugged in when the
    guest asks (PLUG_MARKER on its console), so that they are not there at boot."""
    job = work / f"job-{name}"
    job.mkdir(parents=True)
    shutil.copytree(deb_dir, job / "dist")
    for f in ("bench_guest.py", "bench_manual.sh"):
        shutil.copy(JOBS / f, job / f)
    (job / "job.sh").write_text(f"{env} exec python3 /job/bench_guest.py {mode}\n".lstrip())
    out = work / f"out-{name}"
    for attempt in (1, 2):
        progress(f"boot {name}: starting ({len(disks)} extra disks)")
        result = _boot_once(name, image, job, out, disks=disks, root=root, timeout=timeout,
                            cmdline_extra=cmdline_extra, hotplug=hotplug)  # fmt: skip
        if attempt == 2 or not _died_before_job(result):
            break
        kept = result.console_log.replace(out / "console.died-before-job.log")
        progress(f"boot {name}: the guest died before its job started ({kept}); once more")
    boot = Boot(name, ok=result.ok, wall_s=result.duration_s, to_job_s=result.job_start_s,
                summary=result.summary(), out=out)  # fmt: skip
    results = out / "results.jsonl"
    if results.exists():
        boot.rows = [json.loads(line) for line in results.read_text().splitlines() if line]
    progress(f"boot {name}: {result.summary()}")
    if not result.ok:
        print(result.console_tail(40), file=sys.stderr)
    return boot


def _boot_once(name: str, image: GuestImage, job: Path, out: Path, *, disks: list[Disk],
               root: Path, cmdline_extra: str, hotplug: list[Disk] | None,
               timeout: float) -> JobResult:  # fmt: skip
    seen = 0
    pending = list(hotplug or [])
    with start_job(image, job, out_dir=out, disks=disks, timeout=timeout, root_overlay=root,
                   cmdline_extra=cmdline_extra, qmp=bool(pending),
                   scsi_controller=bool(pending)) as running:  # fmt: skip
        while running.running():
            seen = _echo_guest_progress(out / "console.log", seen)
            if pending and PLUG_MARKER in (out / "console.log").read_text(errors="replace"):
                assert running.qmp_socket is not None
                for i, d in enumerate(pending):
                    hotplug_scsi_disk(running.qmp_socket, d.path, node=f"hp{i}",
                                      serial=d.serial, fmt=d.format)  # fmt: skip
                progress(f"boot {name}: {len(pending)} scsi disks plugged in")
                pending = []
            time.sleep(1)
        result = running.wait()
    _echo_guest_progress(out / "console.log", seen)
    return result


def _died_before_job(result: JobResult) -> bool:
    """Retry once, as the guest tests do: the guest kernel panicked or oopsed before the
    job started (seen under TCG on a loaded host: init killed by a page fault at 14 s)."""
    return result.died_before_job(r"Kernel panic|\bOops\b|BUG: kernel|\bint3\b", r"\[bench guest")


def _echo_guest_progress(console: Path, seen: int) -> int:
    try:
        lines = console.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return seen
    for line in lines[seen:]:
        if line.startswith("[bench guest"):
            progress("  " + line.strip())
    return len(lines)


# ------------------------------------------------------------------------- imports
def parse_importtime(text: str) -> list[tuple[int, str, int]]:
    """(level, module, cumulative us) for each import after the marker line."""
    out: list[tuple[int, str, int]] = []
    lines = text.splitlines()
    if MARK in lines:
        lines = lines[lines.index(MARK) + 1 :]
    for line in lines:
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        raw = parts[2][1:]
        level = (len(raw) - len(raw.lstrip(" "))) // 2
        out.append((level, raw.strip(), int(parts[1])))
    return out


def top_level_ms(entries: Iterable[tuple[int, str, int]]) -> float:
    return sum(cum for level, _, cum in entries if level == 0) / 1000


HOST_MODULES_CHILD = f"""
import importlib, sys, types
sys.path.insert(0, {str(ROOT / "cloudinit_module")!r})
# cloud-init's process has cloudinit.settings before it loads a module; a stand-in here
settings = types.ModuleType("cloudinit.settings")
settings.PER_ALWAYS = "always"
sys.modules["cloudinit"] = types.ModuleType("cloudinit")
sys.modules["cloudinit.settings"] = settings
missing = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError:
        missing.append(name)
print(" ".join(missing))
"""


def host_imports(captures: dict[str, Path], log: Callable[[str], None]) -> list[dict[str, Any]]:
    """-X importtime on the host with the project's venv. The budgets as
    scripts/bench-imports.py defines them (`--version`; the converged path; the floor of
    the stdlib a converged run needs), then each converged path as boot 1 saw it: the
    top-level modules it imported there, imported here in the same order. Both count
    every top-level import of the process, the interpreter's start-up included."""
    python = str(ROOT / ".venv" / "bin" / "python")
    rows = budget_rows(python, log)
    jobs: list[tuple[str, float, list[str]]] = []
    for name, path in captures.items():
        entries = parse_importtime(path.read_text()) if path.exists() else []
        mods = [m for level, m, _ in entries if level == 0 and not m.startswith("cloudinit")]
        if not mods:
            continue
        label = {"cli": "converged `direct-lvm apply`, modules seen in boot 1",
                 "module": "converged cloud-init module (run_boot), modules seen in boot 1",
                 }.get(name, name)  # fmt: skip
        jobs.append((label, BUDGET_CONVERGED_MS, ["-c", HOST_MODULES_CHILD, *mods]))
    # bytecode is written by the warm-up run, as on an installed system (a CI shell may
    # set PYTHONDONTWRITEBYTECODE, and then every run would compile every module)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for label, budget, args in jobs:
        times, jinja, count, missing = [], False, 0, ""
        for i in range(IMPORT_RUNS + 1):  # the first run warms the .pyc caches
            argv = [python, "-X", "importtime", *args]
            proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
            entries = parse_importtime(proc.stderr)
            if i == 0:
                log(f"$ {python} -X importtime -c <{label}> {' '.join(args[2:])}\n"
                    f"exit {proc.returncode}\n{proc.stdout}{proc.stderr}")  # fmt: skip
                continue
            times.append(top_level_ms(entries))
            jinja = jinja or any(m.split(".")[0] == "jinja2" for _, m, _ in entries)
            count = len({m for _, m, _ in entries})
            missing = proc.stdout.strip()
        rows.append({"path": label, "budget": budget, "ms": statistics.median(times),
                     "min": min(times),
                     "jinja2": jinja, "modules": count, "missing": missing})  # fmt: skip
    return rows


def budget_rows(python: str, log: Callable[[str], None]) -> list[dict[str, Any]]:
    argv = [python, str(ROOT / "scripts" / "bench-imports.py"), "--json", "--runs", "9"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    log(f"$ {' '.join(argv)}\nexit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    try:
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return [{"path": "scripts/bench-imports.py", "failed": True, "budget": None, "ms": None,
                 "min": None, "jinja2": None, "modules": "", "missing": ""}]  # fmt: skip
    titles = {"version": "`direct-lvm --version`", "converged": "converged path (bench-imports)",
              "floor": "floor: the stdlib a converged run needs"}  # fmt: skip
    return [{"path": titles.get(name, name), "budget": r.get("budget_ms"), "ms": r["median_ms"],
             "min": r["min_ms"], "jinja2": "jinja2" in r.get("modules", []),
             "modules": ", ".join(r.get("modules", [])) or "none of jinja2/jsonschema/tomlkit",
             "missing": ""} for name, r in doc.items()]  # fmt: skip


# ------------------------------------------------------------------------- table
def fmt_s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def human(n: float | None) -> str:
    if n is None:
        return "n/a"
    for unit, size in (("TiB", TIB), ("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n:.0f} B"


def med(rows: list[dict[str, Any]], key: str = "seconds") -> float | None:
    vals = [float(r[key]) for r in rows if r.get(key) is not None and not r.get("failed")]
    return statistics.median(vals) if vals else None


def met(value: float | None, goal: float | None) -> str:
    if value is None or goal is None:
        return ""
    return "yes" if value <= goal else "**no**"


def cloudinit_events(out: Path | None) -> dict[str, float]:
    """Durations (s) of the last start/finish pair of each event in analyze dump."""
    if out is None or not (out / "analyze-dump.json").exists():
        return {}
    try:
        events = json.loads((out / "analyze-dump.json").read_text())
    except ValueError:
        return {}
    starts: dict[str, float] = {}
    took: dict[str, float] = {}
    for ev in events:
        name, kind, ts = ev.get("name"), ev.get("event_type"), ev.get("timestamp")
        if not name or ts is None:
            continue
        if kind == "start":
            starts[name] = float(ts)
        elif kind == "finish" and name in starts:
            took[name] = float(ts) - starts[name]
    return took


def compare_section(boot: Boot, rounds: int) -> tuple[list[str], float | None]:
    rows = boot.group("compare")
    manual = med([r for r in rows if r["side"] == "manual"])
    lines = [f"### Manual procedure vs direct-lvm (boot 1: {rounds} rounds in rotating order "
             "on identical blank 4 GiB disks; medians)", "",
             "| run | median s | vs manual | goal | met | lvm processes (commands) | peak RSS MiB "
             "| rounds s |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    names = {"manual": "manual procedure (+ drop-in, daemon-reload)",
             "apply": "`direct-lvm apply --no-restart`", "noop": "no-op (second apply)",
             "plan": "`plan`, converged", "status": "`status`, converged"}  # fmt: skip
    goals = {"apply": GOAL_APPLY, "noop": GOAL_NOOP}
    for side, title in names.items():
        rs = sorted((r for r in rows if r["side"] == side), key=lambda r: r["round"])
        m = med(rs)
        ratio = m / manual if m is not None and manual else None
        lvm = sorted({f"{r['lvm']} ({r.get('lvm_cmds', r['lvm'])})" for r in rs})
        rss = med(rs, "rss_kib")
        per = " / ".join(("FAILED" if r.get("failed") else f"{r['seconds']:.2f}") for r in rs)
        goal = goals.get(side)
        lines.append(
            f"| {title} | {fmt_s(m)} | {fmt_s(ratio)} | {'' if goal is None else f'<= {goal}'} "
            f"| {met(ratio, goal)} | {'/'.join(map(str, lvm)) or 'n/a'} "
            f"| {'n/a' if rss is None else f'{rss / 1024:.0f}'} | {per} |")  # fmt: skip
    return lines, manual


def lvm_section(boot: Boot) -> list[str]:
    lines = ["### One lvm process (boot 1, medians of 3; two VGs, 7 disks)", "",
             "| lvm command | median s |", "|---|---|"]  # fmt: skip
    by: dict[str, list[dict[str, Any]]] = {}
    for r in boot.group("lvm"):
        by.setdefault(r["what"], []).append(r)
    for what, rs in by.items():
        lines.append(f"| `{what}` | {fmt_s(med(rs))} |")
    seq = boot.group("lvm-seq")
    lines += ["", "| sequence | separate processes s | one lvm process s | saves s |",
              "|---|---|---|---|"]  # fmt: skip
    for name in ("create", "grow"):
        sep = [r for r in seq if r["seq"] == name and r["how"] == "separate"]
        one = [r for r in seq if r["seq"] == name and r["how"] == "one lvm"]
        a, b = med(sep), med(one)
        n = sep[0]["commands"] if sep else "?"
        saves = fmt_s(a - b) if a is not None and b is not None else "n/a"
        lines.append(f"| {name} ({n} commands) | {fmt_s(a)} | {fmt_s(b)} | {saves} |")
    modes = {r.get("mode") for r in seq if r.get("how") == "one lvm"}
    refused = [r for r in boot.group("lvm-file") if r.get("rc") != 0]
    if refused:
        said = refused[0].get("tail", "").strip().splitlines()[:1]
        lines += ["", f"`lvm FILE` (lvm(8)'s script form): exit {refused[0].get('rc')}, "
                  f"\"{' '.join(said)}\"; the one-process column is the lvm shell reading the "
                  "same lines on stdin."]  # fmt: skip
    elif modes == {"file"}:
        lines += ["", "The one-process column is `lvm FILE`."]
    detail = boot.group("lvm-script-failure-detail")
    if detail:
        out = detail[0].get("output", "")
        said = [ln.strip() for ln in out.splitlines() if "no_such_vg" in ln][:2]
        went_on = "mbone" in out
        how = "the lvm shell" if refused else "`lvm FILE`"
        lines += ["", f"{how}, 2nd of 3 lines failing: exit {detail[0].get('rc')}, "
                  f"{'runs' if went_on else 'does not run'} the 3rd line; it says: "
                  f"{' / '.join(said) or '(nothing naming it)'}"]  # fmt: skip
    py: dict[str, list[dict[str, Any]]] = {}
    for r in boot.group("python"):
        py.setdefault(r["what"], []).append(r)
    if py:
        lines += ["", "| in the guest (median of 2) | s |", "|---|---|"]
        lines += [f"| `{what}` | {fmt_s(med(rs))} |" for what, rs in py.items()]
    return lines


def imports_section(rows: list[dict[str, Any]], boot: Boot) -> list[str]:
    lines = ["### Imports on the host (`python -X importtime`: the sum of every top-level "
             "import, start-up included; median and min of 9 (bench-imports) or "
             f"{IMPORT_RUNS} runs)", "",
             "| path | budget ms | median ms | min ms | met | jinja2 | modules / watched |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if r.get("failed"):
            lines.append(f"| {r['path']} | FAILED | | | | | |")
            continue
        extra = f" (not on the host: {r['missing']})" if r.get("missing") else ""
        budget = "" if r["budget"] is None else f"<= {r['budget']:.0f}"
        lines.append(f"| {r['path']} | {budget} | {r['ms']:.1f} | {r['min']:.1f} "
                     f"| {met(r['ms'], r['budget'])} | {'yes' if r['jinja2'] else 'no'} "
                     f"| {r['modules']}{extra} |")  # fmt: skip
    guest = {r["path"]: r for r in boot.group("guest-import")}
    if guest and boot.out:
        parts = []
        for name in ("cli", "module"):
            p = boot.out / f"importtime-{name}.txt"
            if p.exists():
                e = parse_importtime(p.read_text())
                jinja = any(m.startswith("jinja2") for _, m, _ in e)
                parts.append(f"{name} {top_level_ms(e):.0f} ms{' (jinja2)' if jinja else ''}")
        said = ", ".join(parts)
        lines += [
            "",
            f"Imports of the same converged paths in the guest, after start-up (TCG): {said}.",
        ]
    return lines


def wait_section(ci: list[Boot], manual: float | None) -> list[str]:
    lines = ["### What users wait for (boots 2-3: cloud-init's own events, `cloud-init analyze "
             "dump`)", "",
             "| boot | direct_lvm adds s | its stage, total s | the stage's unit s "
             "| goal | met | result |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for n, boot in enumerate(ci):
        took = cloudinit_events(boot.out)
        mod = next((k for k in took if k.endswith("/config-direct_lvm")), None)
        stage = mod.split("/")[0] if mod else None
        rec = next(iter(boot.group("cloudinit")), {})
        unit_name = "cloud-init-local.service" if stage == "init-local" else "cloud-init.service"
        unit = next((u for u in rec.get("units", []) if u["unit"] == unit_name), {})
        goal = manual if n == 0 else GOAL_CONVERGED_S
        goal_txt = f"<= manual {fmt_s(manual)}" if n == 0 else f"<= {GOAL_CONVERGED_S}"
        value = took.get(mod) if mod else None
        lines.append(
            f"| {('first boot', 'converged boot')[n]}, cloud-init module | {fmt_s(value)} "
            f"| {fmt_s(took.get(stage)) if stage else 'n/a'} ({stage or '?'}) "
            f"| {fmt_s(unit.get('seconds'))} | {goal_txt} | {met(value, goal)} "
            f"| {rec.get('boot_record', {}).get('result', 'n/a')} |")  # fmt: skip
    for boot in ci[1:]:
        rec = next(iter(boot.group("unit")), {})
        v = rec.get("seconds")
        lines.append(f"| converged run of direct-lvm.service (in boot {boot.name}, unit "
                     f"start to active) | {fmt_s(v)} | | | <= {GOAL_CONVERGED_S} "
                     f"| {met(v, GOAL_CONVERGED_S)} "
                     f"| {rec.get('boot_record', {}).get('result', 'n/a')} |")  # fmt: skip
    return lines


def scale_section(boot: Boot) -> list[str]:
    plug = next(iter(boot.group("scale-plug")), {})
    lines = [f"### Scale (boot {boot.name}, after its own measurement: docker-devicemapper, "
             "`--no-restart`, image-setup's static drop-in; sparse qcow2 disks hot-plugged on "
             f"virtio-scsi: {plug.get('disks', '?')} disks in lsblk after "
             f"{fmt_s(plug.get('seen_s'))} s, udev settled after {fmt_s(plug.get('settled_s'))} s)",
             "",
             "| disks | apply s | no-op s | status s | lvm processes a/n/s "
             "| peak RSS MiB a/n/s | VG | metadata chosen | chunk "
             "| apply's vgcreate / lvcreate / wipefs (n) s |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    rows = boot.group("scale")
    pools = {r["row"]: r for r in boot.group("scale-pool")}
    steps = {r["row"]: r.get("took", {}) for r in boot.group("scale-steps")}
    for row in dict.fromkeys(r["row"] for r in rows):
        by = {r["what"]: r for r in rows if r["row"] == row}
        cells = [("FAILED" if by[w].get("failed") else f"{by[w]['seconds']:.2f}")
                 if w in by else "n/a" for w in ("apply", "noop", "status")]  # fmt: skip
        lvm = "/".join(str(by[w]["lvm"]) if w in by else "?" for w in ("apply", "noop", "status"))
        rss = "/".join(f"{by[w]['rss_kib'] / 1024:.0f}" if w in by else "?"
                       for w in ("apply", "noop", "status"))  # fmt: skip
        lvs = pools.get(row, {}).get("lvs", [])
        pool = next((lv for lv in lvs if lv.get("lv_name") == "thinpool"), {})
        vg, meta, chunk = (
            human(float(pool[k])) if pool.get(k) not in (None, "") else "n/a"
            for k in ("vg_size", "lv_metadata_size", "chunk_size")
        )
        took = steps.get(row, {})
        parts = [fmt_s(sum(took[c])) if took.get(c) else "n/a" for c in ("vgcreate", "lvcreate")]
        wipefs = took.get("wipefs", [])
        parts.append(f"{fmt_s(sum(wipefs))} ({len(wipefs)})" if wipefs else "n/a")
        lines.append(f"| {row} | {' | '.join(cells)} | {lvm} | {rss} | {vg} | {meta} | {chunk} "
                     f"| {' / '.join(parts)} |")  # fmt: skip
    verdict = next(iter(boot.group("accept-verdict")), None)
    if verdict:
        ok = "accepts" if not verdict.get("failed") else "**does not accept**"
        lines += ["", f"containerd's devmapper snapshotter {ok} the 64 TiB pool "
                  f"(`ctr plugins ls`: `{verdict.get('line') or 'not listed'}`)."]  # fmt: skip
    return lines


def failures(boots: list[Boot]) -> list[str]:
    out = []
    for b in boots:
        if not b.ok:
            out.append(f"boot {b.name}: {b.summary}")
        out += [f"boot {b.name}: {r['label']} (exit {r.get('rc')})" for r in b.rows
                if r.get("failed")]  # fmt: skip
    return out


# ------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dist", default="bookworm")
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        choices=(0, 1, 2, 3),
        help="rounds of the comparison (0: none, a quick test of the boots)",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory for the table and the logs (default .cache/bench/<time>)",
    )
    ap.add_argument(
        "--skip",
        default="",
        help="comma list of: cloudinit,scale (a quicker look; without the cloud-init "
        "boots the scale rows get a boot of their own)",
    )
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = (args.out or ROOT / ".cache" / "bench" / stamp).resolve()
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    command_log = out / "commands.log"
    table_path = out / "bench.md"
    progress(f"writing the table to {table_path} and every command to {command_log}")
    load_start = os.getloadavg()[0]

    progress("guest image")
    image = build_image(args.dist)
    progress("building the .deb")
    deb_dir = work / "dist"
    build_deb(dest_dir=deb_dir)
    root = work / "root.qcow2"
    boots: list[Boot] = []

    disks = [Disk(blank_disk(work / f"c{i}.raw", "4G"), serial=f"bench{i}") for i in range(6)]
    compare = run_boot(
        "1-compare",
        "compare",
        image,
        work,
        deb_dir,
        disks=disks,
        root=root,
        env=f"DL_BENCH_ROUNDS={args.rounds}",
    )
    boots.append(compare)
    for d in disks:
        d.path.unlink(missing_ok=True)
    ci: list[Boot] = []
    scale: Boot | None = None
    want_scale = "scale" not in skip
    sdisks = scale_disks(work) if compare.ok and want_scale else []
    if compare.ok and "cloudinit" not in skip:
        seed = bench_seed(work / "seed.img")
        ci_disks = [Disk(blank_disk(work / "ci.raw", "4G"), serial="benchci"),
                    Disk(seed, serial="cidata", readonly=True)]  # fmt: skip
        for n, mode in enumerate(("ci1", "ci2"), start=2):
            rides = mode == "ci2" and bool(sdisks)  # the scale rows, after ci2's measurement
            boot = run_boot(f"{n}-{mode}", mode, image, work, deb_dir, disks=ci_disks, root=root,
                            cmdline_extra="ds=nocloud", hotplug=sdisks if rides else None,
                            env="DL_BENCH_SCALE=1" if rides else "")  # fmt: skip
            boots.append(boot)
            ci.append(boot)
            if rides:
                scale = boot
            if not boot.ok:
                break
    elif compare.ok and want_scale:
        scale = run_boot("2-scale", "scale", image, work, deb_dir, disks=[], root=root,
                         hotplug=sdisks)  # fmt: skip
        boots.append(scale)
    progress("host: python -X importtime")
    host_log: list[str] = []
    captures = {n: compare.out / f"importtime-{n}.txt" for n in ("cli", "module")} \
        if compare.out else {}  # fmt: skip
    imports = host_imports(captures, host_log.append)
    import_failed = any(r.get("failed") for r in imports) or not any(
        "seen in boot 1" in r["path"] for r in imports)  # fmt: skip

    # the table
    lines = [f"## Benchmark: scripts/bench, {stamp}, {args.dist} guest under "
             f"{'KVM' if Path('/sys/module/kvm_intel').exists() else 'TCG'}, host "
             f"{os.cpu_count()} cores, load average {load_start:.1f} at the start and "
             f"{os.getloadavg()[0]:.1f} at the end", ""]  # fmt: skip
    cmp_lines, manual = compare_section(compare, args.rounds)
    lines += cmp_lines + [""] + lvm_section(compare) + [""] + imports_section(imports, compare)
    lines += [""] + wait_section(ci, manual)
    if scale is not None:
        lines += [""] + scale_section(scale)
    lines += ["", "| boot | wall s | qemu start to job s |", "|---|---|---|"]
    lines += [f"| {b.name} | {b.wall_s:.0f} | {fmt_s(b.to_job_s)} |" for b in boots]
    skipped = sorted(skip) + (["cloud-init boots and scale rows (boot 1 failed)"]
                              if not compare.ok else [])  # fmt: skip
    failed = failures(boots) + (["host: no converged import capture"] if import_failed else [])
    lines += ["", f"Total {time.monotonic() - T0:.0f} s. Skipped: {', '.join(skipped) or 'none'}. "
              f"Failed measurements: {'; '.join(failed) or 'none'}."]  # fmt: skip
    table = "\n".join(lines) + "\n"
    table_path.write_text(table)
    with command_log.open("w") as fh:
        for b in boots:
            if b.out and (b.out / "commands.log").exists():
                fh.write(f"\n\n######## boot {b.name} ({b.summary})\n")
                fh.write((b.out / "commands.log").read_text())
        fh.write("\n\n######## host imports\n" + "\n".join(host_log))
    print()
    print(table)
    progress(f"table: {table_path}")
    progress(f"command log: {command_log}")
    return 1 if failed else 0


def scale_disks(work: Path) -> list[Disk]:
    """The scale rows' disks: 32 x 4 GiB, 1 TiB and 64 TiB, sparse qcow2 (nothing written
    until used), plugged in on virtio-scsi when the guest asks."""
    disks = [Disk(qcow2_disk(work / f"s{i:02d}.qcow2", "4G"), serial=f"s{i:02d}",
                  format="qcow2", scsi=True) for i in range(1, 33)]  # fmt: skip
    disks += [Disk(qcow2_disk(work / f"{n}.qcow2", size), serial=n, format="qcow2", scsi=True)
              for n, size in (("t1", "1T"), ("t64", "64T"))]  # fmt: skip
    return disks


def bench_seed(path: Path) -> Path:
    """A NoCloud seed whose user-data carries the direct_lvm key."""
    user_data = "#cloud-config\ndirect_lvm:\n  devices: [/dev/disk/by-id/virtio-benchci]\n"
    return nocloud_seed(path, user_data, "iid-bench-1", hostname="dl-bench")


if __name__ == "__main__":
    sys.exit(main())
