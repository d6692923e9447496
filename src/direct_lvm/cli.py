"""`direct-lvm`: a thin adapter over core. Exit codes: 0 ok, 2 bad config (nothing
changed), 1 failure; `plan --exit-code` 4: changes pending; `status --check` follows the
monitoring-plugins convention (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).

The engine (core, spec: yaml and the rest) is imported inside the cmd_* functions, and
the standard library's argparse, json and logging where they are used: `--version`
imports nothing but this module and the version, `--help` no engine."""

from __future__ import annotations

# Only sys and the version at import time: `direct-lvm --version` (main's fast path)
# imports nothing else. argparse, json, logging and the engine are imported where used.
import sys

from . import __version__

TYPE_CHECKING = False  # typing's own costs an import; mypy knows this name
if TYPE_CHECKING:
    import argparse
    import logging
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

    from .model import Spec
    from .plan import Plan
    from .runtimes._systemd import RestartMode
    from .status import PoolStatus, VolumeStatus
    from .steps import Step


def _log() -> logging.Logger:
    import logging

    return logging.getLogger("direct_lvm")


def _setup_logging(verbose: bool) -> None:
    import logging

    log = _log()
    handler = logging.StreamHandler(sys.stderr)
    fmt = (
        "direct-lvm: [%(relativeCreated)6.0f ms] %(message)s"
        if verbose
        else "direct-lvm: %(message)s"
    )
    handler.setFormatter(logging.Formatter(fmt))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
# core.BOOT_CONFIG_FILE, spelled out so the parser needs no engine import (a unit test
# checks that they agree)
BOOT_CONFIG_FILE = "/etc/direct-lvm/config.yaml"
# `plan --exit-code`: the config would change something (terraform's -detailed-exitcode
# uses 2, which is taken here by "bad configuration").
EXIT_CHANGES_PENDING = 4


def _print_json(doc: dict[str, Any]) -> None:
    import json

    print(json.dumps(doc, indent=2, default=str))


def _print_plan(p: Plan, s: Spec) -> None:
    ref = s.ref
    for fact in p.facts:
        print(f"# {fact}")
    for note in p.notes:
        print(f"# warning: {note}")
    if p.empty:
        print(f"# nothing to do: {ref} matches the config")
        return
    print(f"# {len(p.steps)} step(s) for {ref} (runtime {s.runtime}):")
    for k, step in enumerate(p.steps, 1):
        print(f"\n# {k}. {step.reason}")
        print(step.shell().rstrip("\n"))


def _restart(args: argparse.Namespace) -> RestartMode:
    from .runtimes._systemd import RestartMode

    return RestartMode.NEVER if args.no_restart else RestartMode.NOW


def cmd_validate(args: argparse.Namespace) -> int:
    from . import spec

    s = spec.load_file(args.config)
    if args.json:
        from .report import envelope

        _print_json(envelope(valid=True, config=spec.to_mapping(s)))
        return 0
    print(f"{args.config}: valid")
    if args.verbose:
        import json

        print(json.dumps(spec.to_mapping(s), indent=2))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from . import core, spec
    from .render import remember
    from .report import envelope

    remember(write=False)  # answered from apply's record where it can; plan writes nothing
    s = spec.load_file(args.config)
    p, _ = core.make_plan(s, restart=_restart(args))
    if args.json:
        _print_json(envelope(config=spec.to_mapping(s), **p.to_json()))
    else:
        _print_plan(p, s)
    return EXIT_CHANGES_PENDING if args.exit_code and not p.empty else EXIT_OK


# Test-only: the guest crash-convergence tests (tests/guest/in_guest/crashkit.py) stop
# `apply` right after step k with DIRECT_LVM_TEST_CRASH_AFTER_STEP=k (exit 99). The CLI
# adapter reads it and passes the engine a callback; the engine's loop never looks.
CRASH_ENV = "DIRECT_LVM_TEST_CRASH_AFTER_STEP"
CRASH_EXIT = 99


def crash_hook() -> Callable[[int, Step], None] | None:
    import os

    k = int(os.environ.get(CRASH_ENV, "0") or 0)
    if not k:
        return None

    def stop_after(done: int, step: Step) -> None:
        if done == k:
            _log().info("%s=%d: stopping here on purpose", CRASH_ENV, k)
            os._exit(CRASH_EXIT)

    return stop_after


def cmd_apply(args: argparse.Namespace) -> int:
    from . import core, spec

    log = _log()
    if not args.dry_run:  # a converged run parses and renders from the record, without
        from .render import remember  # PyYAML and jinja2

        remember()
    s = spec.load_file(args.config)
    result = core.apply(s, restart=_restart(args), dry_run=args.dry_run, after_step=crash_hook())
    if args.json:
        _print_json(_apply_json(s, result, dry_run=args.dry_run))
        return 0
    if args.dry_run:
        _print_plan(result.plan, s)
        return 0
    for note in result.plan.notes:
        log.warning("warning: %s", note)
    ref = s.ref
    if result.plan.empty:
        log.info("%s already matches the config; nothing changed (%.1f s)", ref, result.seconds)
    else:
        log.info(
            "%s: %d step(s) applied and verified in %.1f s",
            ref,
            len(result.plan.steps),
            result.seconds,
        )
    return 0


def _apply_json(s: Spec, result: Any, *, dry_run: bool) -> dict[str, Any]:
    """apply --json: what changed (or would, with --dry-run), how it was verified."""
    from .plan import Action
    from .report import envelope

    steps = result.plan.steps
    ran = not dry_run
    return envelope(
        ref=s.ref,
        runtime=str(s.runtime),
        dry_run=dry_run,
        changed=ran and bool(steps),
        steps=[step.to_json() for step in steps],
        commands=[step.shell().rstrip("\n") for step in steps if step.action is Action.RUN],
        files_written=[step.path for step in steps if step.action is Action.WRITE and ran],
        verified=list(result.verified),
        seconds=round(result.seconds, 3),
        notes=list(result.plan.notes),
        facts=list(result.plan.facts),
    )


def cmd_status(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import core, report
    from .errors import DirectLvmError

    log = _log()

    fmt = "json" if args.json else args.format
    if args.output and fmt != "prometheus":
        from .errors import ConfigError

        raise ConfigError(
            f"--output {args.output} is for the Prometheus textfile only",
            "add --format prometheus, or drop --output",
        )
    try:
        pools = core.status()
        lvs = core.volumes()
    except DirectLvmError as e:
        if not args.check:
            raise
        verdict = report.unknown(f"cannot tell: {e.message}")
        log.error("error: %s", e)
        if fmt == "json":
            _print_json(report.envelope(pools=[], volumes=[], check=verdict.to_json()))
        else:
            print(verdict.line)
        return verdict.code
    verdict = report.check(pools, lvs)
    code = verdict.code if args.check else 0
    # the boot path's config file (None: absent; a config may also come from the key)
    config_file = core.BOOT_CONFIG_FILE if Path(core.BOOT_CONFIG_FILE).exists() else None
    if fmt == "prometheus":
        text = report.prometheus(pools, lvs, core.last_apply())
        if args.output:
            core.write_file(args.output, text)
        else:
            sys.stdout.write(text)
        return code
    if fmt == "json":
        doc = report.envelope(
            pools=[p.to_json() for p in pools],
            volumes=[v.to_json() for v in lvs],
            config_file=config_file,
        )
        if args.check:
            doc["check"] = verdict.to_json()
        _print_json(doc)
        return code
    if args.check:  # the monitoring plugin's one line (stdout); warnings still on stderr
        print(verdict.line)
        for p in pools:
            for warning in p.warnings:
                log.warning("warning: %s", warning)
        return code
    return _print_status(pools, lvs, config_file)


def _print_status(pools: list[PoolStatus], lvs: list[VolumeStatus], config_file: str | None) -> int:
    from . import core
    from .units import human

    log = _log()

    for v in lvs:  # the plain LVs of the runtimes that use one
        where = f"mounted at {v.mounted_at}" if v.mounted_at else "not mounted"
        print(f"{v.vg}/{v.lv} ({v.dm_path}): {human(v.size)} plain LV, {where}")
    if not pools:
        if not lvs:
            if config_file is None:
                print(
                    f"no config: no {core.BOOT_CONFIG_FILE} and no thin pool managed by "
                    "direct-lvm on this host"
                )
            else:
                print("no thin pool managed by direct-lvm on this host")
        return 0
    for p in pools:
        left = p.extensions_left
        print(
            f"{p.vg}/{p.pool} ({p.dm_path}): {human(p.size)}, "
            f"data {p.data_percent}%, metadata {p.metadata_percent}% of "
            f"{human(p.metadata_size)}, chunk {human(p.chunk_size)}, "
            f"profile {p.profile or '-'}, {p.monitor or 'not monitored'}, "
            f"when full: {p.when_full or '-'}, "
            + ("autoextend off" if left is None else f"room for {left} autoextend step(s)")
        )
        for pv in p.pvs:
            print(
                f"  PV {pv.device}: {human(pv.size)}, serial {pv.serial or '-'}"
                + (f", wwn {pv.wwn}" if pv.wwn else "")
                + "".join(f", {link}" for link in pv.by_id[:1])
                + (f"; chosen by devices entry {pv.entry}: {pv.reason}" if pv.entry else "")
            )
        for kept in p.docker_backups:
            print(f"  docker's earlier storage kept at {kept}")
        for warning in p.warnings:
            log.warning("warning: %s", warning)
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    from . import reset, spec

    s = spec.load_file(args.config)
    result = reset.reset(s, yes=args.yes, force=args.force)
    if args.json:
        import json

        print(json.dumps(reset.to_json(s, result), indent=2))
    else:
        print("\n".join(reset.text_lines(s, result)))
    return 0


def cmd_image_setup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import image

    root = Path(args.root)
    cloud_init = not args.no_cloud_init
    # checked first: nothing is written for a boot path that could not run
    check = image.check_cloud_init(root) if cloud_init else image.check_service(root)
    for path in image.image_setup(root, cloud_init=cloud_init, check=check):
        print(path)
    for note in check.notes:
        print(f"# {note}")
    if args.metrics_timer:
        from .image import metrics_timer_setup

        for path in metrics_timer_setup(root):
            print(path)
    return 0


def cmd_boot(args: argparse.Namespace) -> int:
    import logging

    from .bootpath import BY_SERVICE, run_boot, settle_udev

    for handler in _log().handlers:  # the journal names the unit; core's lines name the run
        handler.setFormatter(logging.Formatter("%(message)s"))
    return run_boot(BY_SERVICE, {}, config_path=args.config, before_work=settle_udev)


def cmd_render(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import envs

    if args.env:
        env = envs.load_env(Path(args.envs_dir), args.env)
    else:
        env = envs.env_from_config(Path(args.config))
    files = envs.artifacts(env, envs.Carrier(args.carrier))
    for path in envs.write_artifacts(files, Path(args.out)):
        print(path)
    return 0


def _fields_text() -> str:
    """Every config field with its type and the first sentence of its description, read
    from the JSON schema (json only: no jsonschema import for --help)."""
    import json
    import re
    import textwrap
    from importlib import resources

    root = json.loads(
        resources.files("direct_lvm").joinpath("schema/direct_lvm.schema.json").read_text()
    )
    required = set(root.get("required", []))
    lines = []

    def kind(node: dict[str, Any]) -> str:
        if "$ref" in node:
            return {"lvm_name": "LVM name", "size": "size"}.get(
                node["$ref"].rsplit("/")[-1], "string"
            )
        if "enum" in node:
            return "|".join(map(str, node["enum"]))
        if "anyOf" in node:
            return "auto|size" if node.get("default") == "auto" else "various"
        return str(node.get("type", "any"))

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, node in props.items():
            first = re.split(r"(?<=[a-z0-9)])\. (?=[A-Z])", str(node.get("description", "")))[0]
            first = first.rstrip(".")
            default = node.get("default")
            shown = "" if default in (None, {}) else f" (default {json.dumps(default)})"
            need = " (required)" if not prefix and name in required else ""
            lines.append(f"  {prefix}{name}: {kind(node)}{need}{shown}")
            lines.append(
                textwrap.fill(first, 88, initial_indent=" " * 6, subsequent_indent=" " * 6)
            )
            if node.get("type") == "object" and "properties" in node:
                walk(node["properties"], f"{prefix}{name}.")

    walk(root["properties"], "")
    return "\n".join(lines)


# Stands in validate's epilog for the list of fields until help or the man page reads it.
FIELDS_PLACEHOLDER = "{config fields from the schema}"


def _help(text: str) -> str:
    return text.strip("\n")


def _parser_class() -> type[argparse.ArgumentParser]:
    """With --json anywhere on the command line, a usage error is JSON on stdout too.
    (A class made on first use: argparse is not imported for --version.)"""
    import argparse

    class _Parser(argparse.ArgumentParser):
        # The epilog as help and the man page read it: validate's list of fields is read
        # from the schema then, not each time the parser is built (~0.3 s of a TCG
        # guest's apply went to it).
        @property
        def epilog(self) -> str | None:
            text: str | None = self.__dict__.get("_epilog")
            if text and FIELDS_PLACEHOLDER in text:
                return text.replace(FIELDS_PLACEHOLDER, _fields_text())
            return text

        @epilog.setter
        def epilog(self, value: str | None) -> None:
            self.__dict__["_epilog"] = value

        def error(self, message: str) -> NoReturn:
            if "--json" in sys.argv[1:] or "--json" in _ARGV:
                import json

                from .report import error_json

                print(json.dumps(error_json(EXIT_CONFIG, message, f"see {self.prog} --help")))
            super().error(message)

    return _Parser


_ARGV: list[str] = []  # main()'s argv, for _Parser.error


def build_parser() -> argparse.ArgumentParser:
    import argparse

    _Parser = _parser_class()
    raw = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="direct-lvm",
        description="LVM thin pools for container runtimes, set up from a cloud-config.",
        formatter_class=raw,
        epilog=_help(f"""
Exit codes (every command):
  0  ok
  1  a command failed, the result did not verify, or an OS error (path and reason named)
  2  bad configuration or refused device: nothing was changed
  {EXIT_CHANGES_PENDING}  plan --exit-code: changes pending
status --check uses the monitoring-plugins codes instead: 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN. With --json, an error is also printed on stdout as
{{"format": 1, "error": {{"code", "message", "field", "value", "fix"}}}}.

Example: direct-lvm plan /etc/direct-lvm/config.yaml
"""),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback for any error (for bug reports)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    cfg_help = "a cloud-config with a direct_lvm key, or just the direct_lvm mapping (YAML)"
    json_help = 'machine-readable output ("format": 1; errors too, on stdout)'

    p = sub.add_parser(
        "validate",
        help="check a config against the schema",
        formatter_class=raw,
        description="Check a config: YAML (at most 1 MiB, UTF-8, no repeated keys), the "
        "schema, and LVM's naming rules. Touches nothing, probes nothing.",
        epilog=_help(f"""
Exit codes: 0 valid; 2 invalid (each problem named with its line, column and fix).
Example: direct-lvm validate /etc/direct-lvm/config.yaml

Fields (under the direct_lvm key, or at top level):
{FIELDS_PLACEHOLDER}
"""),
    )
    p.add_argument("config", help=cfg_help)
    p.add_argument("--json", action="store_true", help=json_help)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "plan",
        help="show the steps apply would run, as shell lines",
        formatter_class=raw,
        description="Probe the system (read-only) and print the steps apply would run, "
        "each with its reason, as shell lines you could paste.",
        epilog=_help(f"""
Exit codes: 0 ok (with --exit-code: nothing to do); {EXIT_CHANGES_PENDING} with --exit-code: changes
pending; 2 bad configuration or refused device; 1 a probe failed.
Example: direct-lvm plan --exit-code /etc/direct-lvm/config.yaml || echo "would change"
"""),
    )
    p.add_argument("config", help=cfg_help)
    p.add_argument("--json", action="store_true", help=json_help)
    p.add_argument("--no-restart", action="store_true", help="do not (re)start the runtime")
    p.add_argument(
        "--exit-code",
        action="store_true",
        help=f"exit {EXIT_CHANGES_PENDING} when apply would change something (0 when not)",
    )
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser(
        "apply",
        help="make the system match the config, then verify it",
        formatter_class=raw,
        description="Plan, run the steps (each command logged as a shell line), re-probe "
        "and verify. A converged system is left as it is. The time and result are "
        "recorded in /var/lib/direct-lvm/last-apply.json (for status --format prometheus).",
        epilog=_help("""
Exit codes: 0 applied and verified (or nothing to do); 2 bad configuration or refused
device, nothing changed; 1 a command failed or the result did not verify.
Example: direct-lvm apply --json /etc/direct-lvm/config.yaml
"""),
    )
    p.add_argument("config", help=cfg_help)
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--no-restart", action="store_true", help="do not (re)start the runtime")
    p.add_argument("--json", action="store_true", help=json_help + "; what changed")
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser(
        "reset",
        help="undo what direct-lvm made for a config (only what carries its tag)",
        formatter_class=raw,
        description="Without --yes: print the steps, as shell lines with their reasons, "
        "and change nothing. With --yes: stop the runtime (left stopped), remove the LVs, "
        "VG and PVs tagged direct_lvm (the disks are left blank) and the files direct-lvm "
        "wrote for the config, re-probe and verify. Backups of docker's earlier storage "
        "are kept and listed.",
        epilog=_help("""
Exit codes: 0 ok (or nothing to do); 2 refused or bad configuration, nothing changed: a
VG without the direct_lvm tag or holding LVs without it (even with --force), containers
exist (without --force); 1 a command failed or the result did not verify.
Example: direct-lvm reset --yes /etc/direct-lvm/config.yaml
"""),
    )
    p.add_argument("config", help=cfg_help)
    p.add_argument("--yes", action="store_true", help="do it (default: only print the plan)")
    p.add_argument("--force", action="store_true",
                   help="also when containers exist: they are destroyed with the pool")  # fmt: skip
    p.add_argument("--json", action="store_true", help=json_help)
    p.set_defaults(func=cmd_reset)

    p = sub.add_parser(
        "image-setup",
        help="prepare an image at bake time: register the cloud-init module (no pool is made)",
        formatter_class=raw,
        description="Register the direct_lvm module in cloud-init's init stage (every "
        "boot) and order docker and containerd after cloud-init. Makes no pool. Checks "
        "first that cloud-init's own Python (the #! line of its entry point) imports "
        "direct-lvm's module, and prints cloud-init's version and the render carrier for "
        "it. Leaves /etc/direct-lvm/image-setup.json, so a boot without a config is a "
        "warning.",
        epilog=_help("""
Exit codes: 0 done; 1 cloud-init is missing or cannot import the module (the fix is
named), or an OS error (the path and the reason are named).
Example: direct-lvm image-setup --root /mnt/image --metrics-timer
"""),
    )
    p.add_argument("--root", default="/", help="the image's root directory (default /)")
    p.add_argument(
        "--no-cloud-init",
        action="store_true",
        help="enable direct-lvm.service (reads /etc/direct-lvm/config.yaml at boot) instead "
        "of registering the cloud-init module",
    )
    p.add_argument(
        "--metrics-timer",
        action="store_true",
        help="also install and enable direct-lvm-metrics.timer (Prometheus textfile, every minute)",
    )
    p.set_defaults(func=cmd_image_setup)

    p = sub.add_parser(
        "boot",
        help="the boot path (what direct-lvm.service runs): make or re-check the storage "
        "before the runtime starts; once per boot",
        formatter_class=raw,
        description="Runs the cloud-init module's path: on failure the runtime is masked "
        "for this boot. A second run in the same boot (after the module or the service) "
        "says who did the work and does nothing.",
        epilog=_help(f"""
Exit codes as apply: 0 ok; 2 bad config (the runtime is masked for this boot); 1 failure.
Example: direct-lvm boot --config {BOOT_CONFIG_FILE}
"""),
    )
    p.add_argument("--config", default=BOOT_CONFIG_FILE,
                   help=f"default: {BOOT_CONFIG_FILE}")  # fmt: skip
    p.set_defaults(func=cmd_boot)

    p = sub.add_parser(
        "render",
        help="write every artifact of an environment (user-data, profile, drop-ins)",
        formatter_class=raw,
        description="Write the cloud-config user-data of an environment (or a config) and "
        "every file it leads to, for review. Touches nothing else.",
        epilog=_help("""
Exit codes: 0 written; 2 bad environment or configuration; 1 an OS error writing (the
path and the reason are named).
Example: direct-lvm render --env prod-nvme --out out/
"""),
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--env", help="an environment name: ENVS_DIR/NAME.yaml")
    which.add_argument("--config", help=cfg_help)
    p.add_argument("--envs-dir", default="environments", help="default: ./environments")
    p.add_argument("--out", required=True, help="directory to write into")
    p.add_argument(
        "--carrier",
        choices=["key", "file"],
        default="file",
        help="how user-data carries the config: a write_files entry for "
        "/etc/direct-lvm/config.yaml (default; every cloud-init from 20.4 on, and its "
        "part appends to other parts' lists), or the direct_lvm key (fine below "
        "cloud-init 23.4, a degraded boot from 23.4 on)",
    )
    p.set_defaults(func=cmd_render)

    p = sub.add_parser(
        "status",
        help="the thin pools and LVs direct-lvm manages",
        formatter_class=raw,
        description="Each pool direct-lvm owns: size, usage, chunk, profile, monitoring, "
        "autoextend room, PVs and backups; docker-overlay2's LVs. A pool at or above its "
        "autoextend threshold (80% when autoextend is off) with no room for one more step "
        "gets a warning.",
        epilog=_help("""
Exit codes: 0 (1 if LVM cannot be read). With --check (monitoring-plugins, for Nagios
and Icinga), one status line with perfdata on stdout and:
  0 OK
  1 WARNING   a pool is past its threshold with no room to extend, or autoextend is
              configured but the pool is not monitored; an LV is not mounted
  2 CRITICAL  a pool is full (data or metadata 100%), failed, out of data space, or
              its metadata is read-only
  3 UNKNOWN   cannot tell: lvm failed, or no pool or LV managed here
Example: direct-lvm status --format prometheus --output \\
           /var/lib/prometheus/node-exporter/direct-lvm.prom
"""),
    )
    p.add_argument("--json", action="store_true", help=json_help + " (= --format json)")
    p.add_argument(
        "--check",
        action="store_true",
        help="monitoring-plugin mode: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
    )
    p.add_argument(
        "--format",
        choices=["text", "json", "prometheus"],
        default="text",
        help="prometheus: node_exporter's textfile format (metrics listed in the README)",
    )
    p.add_argument(
        "--output",
        metavar="FILE",
        help="with --format prometheus: write FILE atomically (temp file + rename)",
    )
    p.set_defaults(func=cmd_status)
    return parser


def _os_hint(e: OSError) -> str:
    import errno

    return {
        errno.EACCES: "run as root, or choose a path you can write",
        errno.EPERM: "run as root, or choose a path you can write",
        errno.EROFS: "the filesystem is read-only: choose another path (or remount it rw)",
        errno.ENOTDIR: "a part of the path is a file, not a directory: check the path",
        errno.ENOSPC: "the filesystem is full: free some space",
        errno.ENOENT: "check the path",
        errno.EISDIR: "the path is a directory: give a file",
    }.get(e.errno or 0, "check the path and its permissions")


def _report_error(
    args: argparse.Namespace,
    code: int,
    message: str,
    fix: str | None,
    human: str | None = None,
    **known: Any,
) -> int:
    """The error on stderr (`human`, else message and fix), and with --json on stdout."""
    _log().error("error: %s", human or message + (f"\n  fix: {fix}" if fix else ""))
    if getattr(args, "json", False) or getattr(args, "format", "") == "json":
        import json

        from .report import error_json

        print(json.dumps(error_json(code, message, fix, **known), indent=2, default=str))
    return code


# Global options that may come before --version (argparse acts on --version where it
# meets it, so these change nothing about its output).
_BEFORE_VERSION = frozenset({"-v", "--verbose", "--debug"})


def _asks_version(argv: Sequence[str]) -> bool:
    """True for `direct-lvm [-v] [--debug] --version ...`: argparse would print the
    version and exit 0 before looking further. Anything else goes through the parser."""
    for arg in argv:
        if arg == "--version":
            return True
        if arg not in _BEFORE_VERSION:
            return False
    return False


def _service_args(argv: Sequence[str]) -> argparse.Namespace | None:
    """`direct-lvm boot` exactly, as direct-lvm.service runs it at every boot: the
    Namespace the parser gives for it (a unit test compares the two), without importing
    argparse and building the parser (~60 ms on a host, several tenths of a second of the
    unit's converged run under TCG). Any other command line goes through the parser."""
    if list(argv) != ["boot"]:
        return None
    from types import SimpleNamespace

    args = SimpleNamespace(verbose=False, debug=False, command="boot", config=BOOT_CONFIG_FILE,
                           func=cmd_boot)  # fmt: skip
    return args  # type: ignore[return-value]  # the attributes argparse would set


def main(argv: Sequence[str] | None = None) -> int:
    """The only place that catches everything: a DirectLvmError is its message and exit
    code; an OSError is exit 1 with the path and the reason; anything else is an
    internal error (exit 1). --debug adds the traceback; nothing else ever prints one.
    `--version` is answered before the parser is built (as argparse's version action
    does: on stdout, then SystemExit(0)), so it imports nothing."""
    _ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    if _asks_version(_ARGV):
        sys.stdout.write(f"direct-lvm {__version__}\n")
        raise SystemExit(0)
    import traceback

    from .errors import DirectLvmError

    args = _service_args(_ARGV) or build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args))
    except DirectLvmError as e:
        if args.debug:
            traceback.print_exc()
        known = dict(e.details)
        fix = e.hint or known.pop("fix", None)
        return _report_error(args, e.exit_code, e.message, fix, str(e), field=e.field, **known)
    except OSError as e:
        if args.debug:
            traceback.print_exc()
        paths = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None)
        what = f"{paths}: {e.strerror or e}" if paths else str(e.strerror or e)
        return _report_error(args, EXIT_FAILED, what, _os_hint(e), value=paths or None)
    except KeyboardInterrupt:
        return _report_error(args, 130, "interrupted", None)
    except Exception as e:  # noqa: BLE001 (the one catch-all: no traceback without --debug)
        if args.debug:
            traceback.print_exc()
        return _report_error(
            args,
            EXIT_FAILED,
            f"internal error: {type(e).__name__}: {e}",
            "rerun with --debug for the traceback and report it",
        )


def _starts_early(argv: Sequence[str]) -> bool:
    """`direct-lvm [-v] [--debug] apply ...` without --dry-run or help: its first lvm
    report can start before the engine is imported (early.py). Only in entry(): main()
    is also the library's and the tests' way in."""
    rest = [a for a in argv if a not in _BEFORE_VERSION]
    asks = {"--dry-run", "-h", "--help"}
    return rest[:1] == ["apply"] and not asks.intersection(rest)


def entry() -> NoReturn:
    """The `direct-lvm` command (console script, `python -m direct_lvm`): main(), then
    out without the interpreter's teardown. Freeing every module and object, the atexit
    handlers and the joins cost a first apply ~0.3 s under TCG after its last line, and
    nothing of ours needs them: the files are written (records fsynced) and closed by
    then, the log's only handler writes to stderr, and a thread still running is the
    jinja2 import (render.answered: nothing to keep). What Python still holds is stdout's
    and stderr's buffers: flushed here. When a flush fails (a closed pipe), or main ends
    in SystemExit (--version, --help, a usage error), the exit is Python's own, as
    before. main() itself returns (the tests and the library call it)."""
    if _starts_early(sys.argv[1:]):
        from .early import start_report

        start_report()
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - Python's exit reports it as it always has
        raise SystemExit(code) from None
    import os

    os._exit(code)


if __name__ == "__main__":
    entry()
