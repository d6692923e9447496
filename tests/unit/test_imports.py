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


CONVERGED = """
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
from direct_lvm import core, render, spec
from direct_lvm.observed import RuntimeState
from direct_lvm.runtimes._systemd import ServiceState
s = spec.load_file({config!r})
render.remember({record!r})
docker = ServiceState("docker.service", True, (20, 10), exec_start={exec_start!r})
files = core.desired_files(s, RuntimeState(service=docker))
print(json.dumps({{"files": files, "modules": sorted(sys.modules)}}))
"""


def test_a_converged_run_imports_no_jinja2_jsonschema_or_tomlkit(own_python, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("direct_lvm:\n  devices: [/dev/vdb]\n")
    record = str(tmp_path / "rendered.json")
    render.remember(record)  # the run that converged: it rendered and kept the record
    docker = ServiceState("docker.service", True, (20, 10), exec_start=EXEC)
    expected = core.desired_files(spec.load_file(config), RuntimeState(service=docker))
    out = own_python(
        CONVERGED.format(
            module_dir=str(ROOT / "cloudinit_module"),
            config=str(config),
            record=record,
            exec_start=EXEC,
        )  # fmt: skip
    )
    result = json.loads(out.splitlines()[-1])
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
