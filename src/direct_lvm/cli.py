"""`direct-lvm`: a thin adapter over core. Exit codes: 0 ok, 2 bad config (nothing
changed), 1 failure."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__, core, spec
from .errors import DirectLvmError
from .plan import Plan
from .runtime import RestartMode
from .units import human

log = logging.getLogger("direct_lvm")


def _setup_logging(verbose: bool) -> None:
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


def _print_plan(p: Plan, s: spec.Spec) -> None:
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
    return RestartMode.NEVER if args.no_restart else RestartMode.NOW


def cmd_validate(args: argparse.Namespace) -> int:
    s = spec.load_file(args.config)
    print(f"{args.config}: valid")
    if args.verbose:
        print(json.dumps(spec.to_mapping(s), indent=2))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    s = spec.load_file(args.config)
    p, _ = core.make_plan(s, restart=_restart(args))
    if args.json:
        print(json.dumps({"config": spec.to_mapping(s), **p.to_json()}, indent=2))
    else:
        _print_plan(p, s)
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    s = spec.load_file(args.config)
    result = core.apply(s, restart=_restart(args), dry_run=args.dry_run)
    if args.dry_run:
        _print_plan(result.plan, s)
        return 0
    for note in result.plan.notes:
        log.warning("warning: %s", note)
    ref = s.ref
    if result.plan.empty:
        log.info("%s already matches the config; nothing changed (%.1f s)", ref, result.seconds)
    else:
        log.info("%s: %d step(s) applied and verified in %.1f s", ref, len(result.plan.steps),
                 result.seconds)  # fmt: skip
    return 0


# `status --check`: a pool is filling up and nothing can extend it (for monitoring).
EXIT_POOL_ALERT = 3


def cmd_status(args: argparse.Namespace) -> int:
    pools = core.status()
    lvs = core.volumes()
    alert = EXIT_POOL_ALERT if args.check and any(p["warnings"] for p in pools) else 0
    # the boot path's config file (None: absent; a config may also come from the key)
    config_file = core.BOOT_CONFIG_FILE if Path(core.BOOT_CONFIG_FILE).exists() else None
    if args.json:
        print(json.dumps({"pools": pools, "volumes": lvs, "config_file": config_file},
                         indent=2))  # fmt: skip
        return alert
    for v in lvs:  # docker-overlay2's LVs
        where = f"mounted at {v['mounted_at']}" if v["mounted_at"] else "not mounted"
        print(f"{v['vg']}/{v['lv']} ({v['dm_path']}): {human(v['size'])} plain LV, {where}")
    if not pools:
        if not lvs:
            if config_file is None:
                print(f"no config: no {core.BOOT_CONFIG_FILE} and no thin pool managed by "
                      "direct-lvm on this host")  # fmt: skip
            else:
                print("no thin pool managed by direct-lvm on this host")
        return 0
    for p in pools:
        left = p["extensions_left"]
        print(
            f"{p['vg']}/{p['pool']} ({p['dm_path']}): {human(p['size'])}, "
            f"data {p['data_percent']}%, metadata {p['metadata_percent']}% of "
            f"{human(p['metadata_size'])}, chunk {human(p['chunk_size'])}, "
            f"profile {p['profile'] or '-'}, {p['monitor'] or 'not monitored'}, "
            f"when full: {p['when_full'] or '-'}, "
            + ("autoextend off" if left is None else f"room for {left} autoextend step(s)")
        )
        for pv in p.get("pvs", []):
            print(
                f"  PV {pv['device']}: {human(pv['size'])}, serial {pv['serial'] or '-'}"
                + (f", wwn {pv['wwn']}" if pv["wwn"] else "")
                + "".join(f", {link}" for link in pv["by_id"][:1])
                + (
                    f"; chosen by devices entry {pv['entry']}: {pv['reason']}"
                    if pv["entry"]
                    else ""
                )
            )
        for kept in p["docker_backups"]:
            print(f"  docker's earlier storage kept at {kept}")
        for warning in p["warnings"]:
            log.warning("warning: %s", warning)
    return alert


def cmd_reset(args: argparse.Namespace) -> int:
    from . import reset

    s = spec.load_file(args.config)
    result = reset.reset(s, yes=args.yes, force=args.force)
    if args.json:
        print(json.dumps(reset.to_json(s, result), indent=2))
    else:
        print("\n".join(reset.text_lines(s, result)))
    return 0


def cmd_image_setup(args: argparse.Namespace) -> int:
    from . import image

    root = Path(args.root)
    cloud_init = not args.no_cloud_init
    # checked first: nothing is written for a boot path that could not run
    check = image.check_cloud_init(root) if cloud_init else image.check_service(root)
    for path in image.image_setup(root, cloud_init=cloud_init, check=check):
        print(path)
    for note in check.notes:
        print(f"# {note}")
    return 0


def cmd_boot(args: argparse.Namespace) -> int:
    from .bootpath import BY_SERVICE, run_boot

    for handler in log.handlers:  # the journal names the unit; core's lines name the run
        handler.setFormatter(logging.Formatter("%(message)s"))
    return run_boot(BY_SERVICE, {}, config_path=args.config)


def cmd_render(args: argparse.Namespace) -> int:
    from . import envs

    if args.env:
        env = envs.load_env(Path(args.envs_dir), args.env)
    else:
        env = envs.env_from_config(Path(args.config))
    files = envs.artifacts(env, envs.Carrier(args.carrier))
    for path in envs.write_artifacts(files, Path(args.out)):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="direct-lvm",
        description="LVM thin pools for container runtimes, set up from a cloud-config.",
        epilog="Exit codes: 0 ok, 2 bad configuration (nothing changed), 1 failure; "
        "status --check: 3 when a pool is filling up with no room left to extend.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    sub = parser.add_subparsers(dest="command", required=True)
    cfg_help = "a cloud-config with a direct_lvm key, or just the direct_lvm mapping (YAML)"

    p = sub.add_parser("validate", help="check a config against the schema")
    p.add_argument("config", help=cfg_help)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plan", help="show the steps apply would run, as shell lines")
    p.add_argument("config", help=cfg_help)
    p.add_argument("--json", action="store_true", help="machine-readable plan")
    p.add_argument("--no-restart", action="store_true", help="do not (re)start the runtime")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("apply", help="make the system match the config, then verify it")
    p.add_argument("config", help=cfg_help)
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--no-restart", action="store_true", help="do not (re)start the runtime")
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser(
        "reset",
        help="undo what direct-lvm made for a config (only what carries its tag)",
        description="Without --yes: print the steps and change nothing. With --yes: stop "
        "the runtime (left stopped), remove the LVs, VG and PVs tagged direct_lvm and the "
        "files direct-lvm wrote for the config; the disks are left blank. Backups of "
        "docker's earlier storage are kept and listed.",
        epilog="Exit codes: 0 ok, 2 refused (a VG or LV that is not direct-lvm's; containers "
        "exist without --force) or bad config, nothing changed; 1 a command failed. "
        "Example: direct-lvm reset /etc/direct-lvm/config.yaml --yes",
    )
    p.add_argument("config", help=cfg_help)
    p.add_argument("--yes", action="store_true", help="do it (default: only print the plan)")
    p.add_argument("--force", action="store_true",
                   help="also when containers exist: they are destroyed with the pool")  # fmt: skip
    p.add_argument("--json", action="store_true", help='machine-readable ("format": 1)')
    p.set_defaults(func=cmd_reset)

    p = sub.add_parser(
        "image-setup",
        help="prepare an image at bake time: register the cloud-init module (no pool is made)",
        epilog="Checks first that cloud-init's own Python (the #! line of its entry point) "
        "imports direct-lvm's module, and prints cloud-init's version and the render "
        "carrier for it; exit 1 with the fix when it cannot. Leaves "
        "/etc/direct-lvm/image-setup.json, so a boot without a config is a warning.",
    )
    p.add_argument("--root", default="/", help="the image's root directory (default /)")
    p.add_argument(
        "--no-cloud-init",
        action="store_true",
        help="enable direct-lvm.service (reads /etc/direct-lvm/config.yaml at boot) instead "
        "of registering the cloud-init module",
    )
    p.set_defaults(func=cmd_image_setup)

    p = sub.add_parser(
        "boot",
        help="the boot path (what direct-lvm.service runs): make or re-check the storage "
        "before the runtime starts; once per boot",
        epilog="Runs the cloud-init module's path: on failure the runtime is masked for this "
        "boot. A second run in the same boot (after the module or the service) says who "
        "did the work and does nothing. Exit codes as apply: 0, 2 bad config, 1 failure.",
    )
    p.add_argument("--config", default=core.BOOT_CONFIG_FILE,
                   help=f"default: {core.BOOT_CONFIG_FILE}")  # fmt: skip
    p.set_defaults(func=cmd_boot)

    p = sub.add_parser(
        "render", help="write every artifact of an environment (user-data, profile, drop-ins)"
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
        help="the thin pools direct-lvm manages",
        epilog="A pool whose data%% or metadata%% is at or above its autoextend threshold "
        "(80%% when autoextend is off) while the volume group has no room for one more "
        "autoextend step gets a warning. With --check that exits 3 (for monitoring); "
        "0 otherwise, 1 on failure.",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 3 when a pool is past its threshold with no room left to extend",
    )
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args))
    except DirectLvmError as e:
        log.error("error: %s", e)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
