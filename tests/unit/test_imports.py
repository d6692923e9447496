"""What the hot paths import, in a fresh interpreter (which modules, not how long: the
times are scripts/bench-imports.py's). `--version` imports the CLI module and the version
only; a converged run (the cloud-init module, the CLI, the boot path, the config read and
validated, the runtime's files rendered through the render record) imports neither
jinja2 nor jsonschema, nor tomlkit for a docker runtime."""

import json
from pathlib import Path

from direct_lvm import core, render, spec
from direct_lvm.observed import RuntimeState
from direct_lvm.runtimes._systemd import ServiceState

ROOT = Path(__file__).resolve().parents[2]
EXEC = "/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock"
UNUSED_WHEN_CONVERGED = ("jinja2", "jsonschema", "tomlkit")


def test_version_imports_only_the_cli_and_the_version(own_python):
    out = own_python(
        "import sys\n"
        "before = set(sys.modules)\n"
        "from direct_lvm.cli import main\n"
        "try:\n"
        "    main(['--version'])\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "new = sorted(set(sys.modules) - before)\n"
        "import json\n"
        "print(json.dumps({'code': code, 'new': new}))\n"
    )
    result = json.loads(out.splitlines()[-1])
    assert out.startswith("direct-lvm ")
    assert result["code"] == 0
    assert set(result["new"]) <= {"direct_lvm", "direct_lvm.cli", "__future__"}, result["new"]


# Both adapters imported as cloud-init and the CLI import them (cloudinit faked)
ADAPTERS = """
import json, sys
cloudinit = type(sys)("cloudinit")
settings = type(sys)("cloudinit.settings")
settings.PER_ALWAYS = "always"
cloudinit.settings = settings
sys.modules["cloudinit"], sys.modules["cloudinit.settings"] = cloudinit, settings
sys.path.insert(0, {module_dir!r})
import cc_direct_lvm
import direct_lvm.bootpath
import direct_lvm.cli
"""


CONVERGED = (
    ADAPTERS
    + """from direct_lvm import core, render, spec
from direct_lvm.observed import RuntimeState
from direct_lvm.runtimes._systemd import ServiceState
s = spec.load_file({config!r})
render.remember({record!r})
docker = ServiceState("docker.service", True, (20, 10), exec_start={exec_start!r})
files = core.desired_files(s, RuntimeState(service=docker))
print(json.dumps({{"files": files, "modules": sorted(sys.modules)}}))
"""
)


def _run_converged(own_python, tmp_path, script):
    """Run script (CONVERGED or CONVERGED_RUN) in a fresh interpreter on a config and the
    render record of the run that converged on it (it rendered docker-devicemapper's
    files and kept them): (the script's JSON result, those files)."""
    config = tmp_path / "config.yaml"
    config.write_text("direct_lvm:\n  devices: [/dev/vdb]\n")
    record = str(tmp_path / "rendered.json")
    render.remember(record)
    docker = ServiceState("docker.service", True, (20, 10), exec_start=EXEC)
    files = core.desired_files(spec.load_file(config), RuntimeState(service=docker))
    out = own_python(
        script.format(
            module_dir=str(ROOT / "cloudinit_module"),
            config=str(config),
            record=record,
            exec_start=EXEC,
            tmp=str(tmp_path),
        )  # fmt: skip
    )
    return json.loads(out.splitlines()[-1]), files


def test_a_converged_run_imports_no_jinja2_jsonschema_or_tomlkit(own_python, tmp_path):
    result, expected = _run_converged(own_python, tmp_path, CONVERGED)
    assert result["files"] == expected  # the same texts, from the record
    assert len(expected) == 3  # the LVM profile, docker's storage options and its drop-in
    loaded = {m.split(".")[0] for m in result["modules"]}
    assert [m for m in UNUSED_WHEN_CONVERGED if m in loaded] == []
    assert "yaml" in loaded and "direct_lvm.schemacheck" in result["modules"]  # it did work


def test_without_the_record_the_same_run_renders_with_jinja2(own_python, tmp_path):
    """The check above can fail: with an empty record the child needs jinja2."""
    config = tmp_path / "config.yaml"
    config.write_text("direct_lvm:\n  devices: [/dev/vdb]\n")
    out = own_python(
        CONVERGED.format(
            module_dir=str(ROOT / "cloudinit_module"),
            config=str(config),
            record=str(tmp_path / "empty.json"),
            exec_start=EXEC,
        )  # fmt: skip
    )
    assert "jinja2" in json.loads(out.splitlines()[-1])["modules"]


# A converged docker-devicemapper run past its probes: the adapters and the boot path
# imported, the config read and validated, the files rendered from the record, the plan
# made from a converged state (empty) and verified, the apply and boot records written;
# the probes' own modules are imported (their commands are the guest's to run).
CONVERGED_RUN = (
    ADAPTERS
    + """from direct_lvm import OWNER_TAG, core, render, spec
from direct_lvm.observed import Observed, RuntimeState
from direct_lvm.plan import plan
from direct_lvm.probe import LV, PV, VG, LvmState
from direct_lvm.runtimes._systemd import ServiceState
render.remember({record!r})  # as apply and the boot path do, before the config is read
s = spec.load_file({config!r})
GIB, EXT = 1 << 30, 4 << 20
lvm = LvmState(
    pvs=(PV("/dev/vdb", "pv-uuid", s.vg, 4 * GIB, 4 * GIB - EXT),),
    vgs=(VG(s.vg, "vg-uuid", 4 * GIB - EXT, 201 * EXT, EXT, 1023, 201, frozenset({{OWNER_TAG}})),),
    lvs=(LV(s.vg, s.pool, "lv-uuid", "twi-a-tz--", 818 * EXT, 8 << 20, 0.0, 10.0, s.profile_name,
            frozenset({{OWNER_TAG}}), "queue", "thin-pool", s.chunk_size, False, "monitored"),),
)
docker = ServiceState("docker.service", True, (20, 10), "Docker version 20.10.24", True,
                      ("dockerd", "--storage-opt=dm.thinpooldev=" + s.pool_path), {exec_start!r})
runtime = RuntimeState(service=docker)
files = core.desired_files(s, runtime)
the_plan = plan(s, Observed(lvm, {{}}, dict(files), runtime), files)
checks = core.verify(s, lvm, restarted=False, probed=runtime)
core.record_apply(s.ref, success=True, changed=False, path={tmp!r} + "/last-apply.json")
direct_lvm.bootpath.write_record("test", "ok", 0, path={tmp!r} + "/boot.json")
def compiled():  # classes whose __init__ dataclass compiled (exec: file "<string>")
    return sorted(f"{{m}}.{{n}}" for m, mod in list(sys.modules.items())
                  if m.startswith("direct_lvm") for n, c in vars(mod).items()
                  if isinstance(c, type) and c.__module__ == m
                  and getattr(vars(c).get("__init__"), "__code__", None) is not None
                  and vars(c)["__init__"].__code__.co_filename == "<string>")
print(json.dumps({{"empty": the_plan.empty, "checks": list(checks),
                  "modules": sorted(sys.modules), "compiled": compiled()}}))
"""
)

# What a converged docker-devicemapper run does not need (issue 13): status and the
# plain-LV runtimes' module (imported where used), the other runtimes' plugins, the
# commands' own modules, `typing` (annotations only), PyYAML (the record holds the
# config text's parse), and the libraries above.
NOT_ON_THE_CONVERGED_PATH = (
    "typing",
    "yaml",
    "direct_lvm._yamldoc",
    "argparse",
    "tempfile",
    "direct_lvm.status",
    "direct_lvm.runtimes._lvroot",
    "direct_lvm.runtimes.docker_overlay2",
    "direct_lvm.runtimes.containerd_devmapper",
    "direct_lvm.runtimes.containerd_overlayfs",
    "direct_lvm.runtimes.podman",
    "direct_lvm.reset",
    "direct_lvm.report",
    "direct_lvm.image",
    "direct_lvm.envs",
    "direct_lvm.clidoc",
    *UNUSED_WHEN_CONVERGED,
)


def test_a_converged_devicemapper_run_imports_only_what_it_uses(own_python, tmp_path):
    result, _ = _run_converged(own_python, tmp_path, CONVERGED_RUN)
    assert result["empty"] and result["checks"]  # converged, and verified
    modules = set(result["modules"])
    assert sorted(modules & set(NOT_ON_THE_CONVERGED_PATH)) == []
    assert sorted(m for m in modules if m.split(".")[0] in UNUSED_WHEN_CONVERGED) == []
    # it did work: the plugin, the plan and the validation were imported
    assert {"direct_lvm.runtimes.docker_devicemapper", "direct_lvm.plan"} <= modules
    assert "direct_lvm.schemacheck" in modules
    assert json.loads((tmp_path / "boot.json").read_text())["result"] == "ok"
    assert json.loads((tmp_path / "last-apply.json").read_text())["changed"] is False
    # its records are @record classes: dataclass compiled no method for them (issue 13)
    assert result["compiled"] == []


def test_a_plain_lv_runtime_brings_the_modules_left_off_back(own_python, tmp_path):
    """The check above can fail: the same child, then docker-overlay2's plugin (a plain
    LV: it uses _lvroot, which uses status), imports what the check looks for."""
    overlay2 = "from direct_lvm import runtimes\nruntimes.get('docker-overlay2')\n"
    child = CONVERGED_RUN.replace("print(json.dumps(", overlay2 + "print(json.dumps(", 1)
    result, _ = _run_converged(own_python, tmp_path, child)
    modules = set(result["modules"])
    assert {"direct_lvm.runtimes._lvroot", "direct_lvm.status"} <= modules
    assert "direct_lvm.status.PoolStatus" in result["compiled"]  # a plain @dataclass
