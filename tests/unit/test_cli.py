"""The CLI as scripts see it: help, --version without the engine, versioned JSON (errors
too), plan --exit-code, status --check, OS errors and internal errors without a
traceback. The engine is faked where a command would probe the system."""

import json
import sys

import pytest

from direct_lvm import cli, core, report
from direct_lvm.errors import CommandError
from direct_lvm.plan import Plan, Step
from direct_lvm.status import PoolStatus
from direct_lvm.steps import Kind

CONFIG = "devices: [/dev/vdb]\n"
ENGINE = ("jinja2", "jsonschema", "yaml", "direct_lvm.core", "direct_lvm.spec",
          "direct_lvm.plan", "direct_lvm.probe", "direct_lvm.run")  # fmt: skip


def test_version_does_not_import_the_engine(capsys):
    """A fresh import of the CLI (its package modules and the engine's libraries taken
    out of sys.modules, then put back), and the --version path run."""
    saved = {n: m for n, m in sys.modules.items()
             if n.startswith("direct_lvm") or n.split(".")[0] in ("jinja2", "jsonschema",
                                                                  "yaml")}  # fmt: skip
    for name in saved:
        del sys.modules[name]
    try:
        import direct_lvm.cli as fresh

        with pytest.raises(SystemExit) as exc:
            fresh.main(["--version"])
        loaded = [n for n in ENGINE if n in sys.modules]
    finally:
        for name in [n for n in sys.modules if n.startswith("direct_lvm")]:
            del sys.modules[name]
        sys.modules.update(saved)
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == "direct-lvm 0.1.0"
    assert loaded == []


def test_boot_config_file_matches_core():
    assert cli.BOOT_CONFIG_FILE == core.BOOT_CONFIG_FILE


def test_the_services_command_line_gets_what_the_parser_would_give():
    """direct-lvm.service runs `direct-lvm boot`: main skips the parser for exactly that
    line, so its arguments must be the parser's own; every other line is parsed."""
    fast = cli._service_args(["boot"])
    assert fast is not None
    assert vars(fast) == vars(cli.build_parser().parse_args(["boot"]))
    for other in (["-v", "boot"], ["boot", "--config", "/x.yaml"], ["boot", "-h"], ["apply"], []):
        assert cli._service_args(other) is None


def _subcommands():
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_parser_reads_the_schema_only_when_validate_help_is_shown(monkeypatch):
    """Building the parser (every command) does not read the schema for validate's list
    of fields; its help and the man page (which read the epilog) still list them."""
    calls = []
    real = cli._fields_text
    monkeypatch.setattr(cli, "_fields_text", lambda: calls.append(1) or real())
    parser = cli.build_parser()
    validate = next(a for a in parser._actions if a.dest == "command").choices["validate"]
    assert calls == []
    text = validate.format_help()
    assert calls == [1]
    assert "  pool: LVM name" in text and cli.FIELDS_PLACEHOLDER not in text
    assert "  pool: LVM name" in (validate.epilog or "")


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_subcommand_help_says_what_exit_codes_and_an_example(name):
    sub = _subcommands()[name]
    text = sub.format_help()
    assert sub.description, name
    assert "Exit codes" in text, text
    assert "Example: direct-lvm " + name in text or f"direct-lvm {name}" in text, text


def test_validate_help_lists_every_field():
    text = _subcommands()["validate"].format_help()
    for field in ("devices: array (required)", "vg: LVM name", "chunk_size: size",
                  "autoextend.threshold", "overlay2.lv", "containerd.base_image_size"):  # fmt: skip
        assert field in text, text


# ------------------------------------------------------------------ errors


def _config(tmp_path, text=CONFIG):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_json_errors_go_to_stdout_too(command, tmp_path, capsys):
    path = _config(tmp_path, CONFIG + "vg: a\ndata_percent: lots\n")
    rc = cli.main([command, "--json", path])
    out, err = capsys.readouterr()
    assert rc == 2
    doc = json.loads(out)
    assert doc["format"] == 1
    e = doc["error"]
    assert e["code"] == 2
    assert e["field"] == "direct_lvm.data_percent" and e["value"] == "lots"
    assert e["fix"].startswith("write a whole number")
    assert "data_percent" in e["message"]
    assert err.startswith("direct-lvm: error: invalid configuration")  # the human line stays


def test_a_config_error_names_its_fix_once(tmp_path, capsys):
    assert cli.main(["validate", _config(tmp_path, CONFIG + "vg: 'a b'\n")]) == 2
    err = capsys.readouterr().err
    assert err.count("fix:") == 1 and "(line 2, column 5)" in err, err


def test_json_error_of_a_semantic_check_names_field_and_value(tmp_path, capsys):
    assert cli.main(["validate", "--json", _config(tmp_path, CONFIG + "chunk_size: 100K\n")]) == 2
    e = json.loads(capsys.readouterr().out)["error"]
    assert (e["field"], e["value"]) == ("direct_lvm.chunk_size", "100K") and "64K" in e["fix"]


def test_json_error_of_an_unreadable_file(tmp_path, capsys):
    rc = cli.main(["validate", "--json", str(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 2 and doc["error"]["value"] == str(tmp_path)
    assert "is a directory" in doc["error"]["message"] and doc["error"]["fix"]


def test_a_usage_error_with_json_is_json_too(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["plan", "--json"])  # no config
    out, err = capsys.readouterr()
    assert exc.value.code == 2
    assert json.loads(out)["error"]["code"] == 2
    assert "required" in err


def test_render_os_error_is_exit_1_with_path_and_reason(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    out_dir = tmp_path / "file" / "out"
    rc = cli.main(["render", "--config", _config(tmp_path), "--out", str(out_dir)])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert str(tmp_path / "file") in err and "Not a directory" in err, err
    assert "fix: a part of the path is a file" in err, err
    assert "Traceback" not in err


def test_image_setup_os_error_is_exit_1_with_path_and_reason(tmp_path, capsys, monkeypatch):
    from direct_lvm import image

    def denied(root, **kw):
        raise PermissionError(13, "Permission denied", str(root / "etc/cloud/cloud.cfg.d"))

    monkeypatch.setattr(image, "check_cloud_init", lambda root: image.Check([]))
    monkeypatch.setattr(image, "image_setup", denied)
    rc = cli.main(["image-setup", "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert f"{tmp_path}/etc/cloud/cloud.cfg.d: Permission denied" in err, err
    assert "fix: run as root" in err and "Traceback" not in err, err


def test_an_unexpected_exception_is_an_internal_error_without_traceback(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(core, "make_plan", lambda *a, **k: {}["boom"])
    rc = cli.main(["plan", _config(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "internal error: KeyError: 'boom'" in err and "--debug" in err, err
    assert "Traceback" not in err
    rc = cli.main(["--debug", "plan", _config(tmp_path)])
    assert rc == 1 and "Traceback" in capsys.readouterr().err


# ------------------------------------------------------------------ plan / apply


def _plan(steps=()):
    return Plan(tuple(steps), notes=("a note",), facts=("a fact",))


RUN = Step(Kind.LVM, "make the VG", argv=("vgcreate", "docker", "/dev/vdb"))
WRITE = Step(Kind.FILE, "the profile", path="/etc/lvm/profile/x.profile", content="a\n")


@pytest.mark.parametrize(("steps", "code"), [((), 0), ((RUN,), cli.EXIT_CHANGES_PENDING)])
def test_plan_exit_code(steps, code, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(core, "make_plan", lambda s, **k: (_plan(steps), None))
    assert cli.main(["plan", "--exit-code", _config(tmp_path)]) == code
    assert cli.main(["plan", _config(tmp_path)]) == 0  # without the flag: 0 as before
    capsys.readouterr()
    assert cli.main(["plan", "--json", "--exit-code", _config(tmp_path)]) == code
    assert json.loads(capsys.readouterr().out)["changes"] is bool(steps)


def test_plan_exit_code_is_none_of_the_other_codes():
    assert cli.EXIT_CHANGES_PENDING not in (0, 1, 2, 3)


def test_plan_json_has_format_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(core, "make_plan", lambda s, **k: (_plan((RUN,)), None))
    assert cli.main(["plan", "--json", _config(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == 1 and doc["changes"] is True
    assert doc["steps"][0]["argv"] == ["vgcreate", "docker", "/dev/vdb"]
    assert doc["config"]["vg"] == "docker"


def test_apply_json_says_what_changed(tmp_path, monkeypatch, capsys):
    result = core.ApplyResult(_plan((RUN, WRITE)), ("chunk size: '512K'",), 1.23456)
    monkeypatch.setattr(core, "apply", lambda s, **k: result)
    assert cli.main(["apply", "--json", _config(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == 1 and doc["changed"] is True and doc["dry_run"] is False
    assert doc["ref"] == "docker/thinpool" and doc["runtime"] == "docker-devicemapper"
    assert doc["commands"] == ["vgcreate docker /dev/vdb"]
    assert doc["files_written"] == ["/etc/lvm/profile/x.profile"]
    assert [s["reason"] for s in doc["steps"]] == ["make the VG", "the profile"]
    assert doc["verified"] == ["chunk size: '512K'"] and doc["seconds"] == 1.235
    assert doc["notes"] == ["a note"] and doc["facts"] == ["a fact"]


def test_apply_json_converged_and_dry_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(core, "apply", lambda s, **k: core.ApplyResult(_plan(), ("x",), 0.1))
    cli.main(["apply", "--json", _config(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    assert doc["changed"] is False and doc["steps"] == [] and doc["files_written"] == []
    monkeypatch.setattr(core, "apply", lambda s, **k: core.ApplyResult(_plan((WRITE,)), (), 0))
    cli.main(["apply", "--json", "--dry-run", _config(tmp_path)])
    doc = json.loads(capsys.readouterr().out)
    assert doc["dry_run"] is True and doc["changed"] is False and doc["files_written"] == []
    assert len(doc["steps"]) == 1


# ------------------------------------------------------------------ status


def pool(**kw):
    base = {"vg": "docker", "pool": "thinpool", "dm_path": "/dev/mapper/docker-thinpool",
            "size": 8 << 30, "metadata_size": 8 << 20, "data_percent": 12.3,
            "metadata_percent": 4.1, "chunk_size": 512 << 10, "zero": False,
            "when_full": "queue", "profile": "docker-thinpool", "monitor": "monitored",
            "attr": "twi-aotz--", "vg_free": 2 << 30, "autoextend_threshold": 80,
            "autoextend_percent": 20, "extensions_left": 1, "lv_uuid": "u",
            "docker_backups": [], "warnings": [], "pvs": []}  # fmt: skip
    return PoolStatus(**{**base, **kw})


@pytest.mark.parametrize(
    ("pools", "code", "line"),
    [
        ([pool()], 0, "DIRECT-LVM OK - docker/thinpool data 12.3% meta 4.1% | "
         "data_percent=12.3%;80;100;0;100 metadata_percent=4.1%;80;100;0;100"),
        ([pool(data_percent=85.0, extensions_left=0, warnings=["w"])], 1,
         "DIRECT-LVM WARNING - docker/thinpool data 85.0% meta 4.1%: WARNING past 80% "
         "with no room to extend"),
        ([pool(monitor="not monitored")], 1, "not monitored: autoextend will not run"),
        ([pool(monitor="", autoextend_percent=None, autoextend_threshold=None,
               extensions_left=None)], 0, "DIRECT-LVM OK"),
        ([pool(data_percent=100.0, extensions_left=0, warnings=["w"])], 2,
         "DIRECT-LVM CRITICAL - docker/thinpool data 100.0% meta 4.1%: CRITICAL data full"),
        ([pool(metadata_percent=100.0)], 2, "CRITICAL metadata full"),
        ([pool(attr="twi-aotzD-")], 2, "CRITICAL out of data space"),
        ([pool(attr="twi-aotzM-")], 2, "CRITICAL metadata read-only"),
        ([pool(attr="twi-aotzF-", data_percent=None, metadata_percent=None)], 2, "failed"),
        ([pool(data_percent=None, metadata_percent=None, attr="twi---tz--")], 3,
         "no usage reported"),
        ([], 3, "DIRECT-LVM UNKNOWN - no thin pool or LV managed by direct-lvm"),
        ([pool(), pool(vg="b", data_percent=100.0)], 2,
         "'docker/thinpool data_percent'=12.3%;80;100;0;100"),
        ([pool(attr="twi-aotzD-"), pool(vg="b", monitor="")], 2, "b/thinpool data"),
    ],
)  # fmt: skip
def test_status_check_is_a_monitoring_plugin(pools, code, line, monkeypatch, capsys):
    monkeypatch.setattr(core, "status", lambda: pools)
    monkeypatch.setattr(core, "volumes", lambda: [])
    assert cli.main(["status", "--check"]) == code
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("DIRECT-LVM "), out
    assert line in out, out
    assert cli.main(["status", "--check", "--json"]) == code
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == 1 and doc["check"]["code"] == code
    assert doc["check"]["state"] == report.STATE_NAMES[code]


def test_status_check_unknown_when_lvm_fails(monkeypatch, capsys):
    def fail():
        raise CommandError(["lvm", "fullreport"], 5, "  /dev/mapper/control: open failed")

    monkeypatch.setattr(core, "status", fail)
    assert cli.main(["status", "--check"]) == 3
    out = capsys.readouterr().out
    assert out.startswith("DIRECT-LVM UNKNOWN - cannot tell: command failed with exit code 5")
    assert out.count("\n") == 1
    assert cli.main(["status"]) == 1  # without --check: a failure, as before


def test_status_without_check_exits_0_even_when_full(monkeypatch, capsys):
    monkeypatch.setattr(core, "status", lambda: [pool(data_percent=100.0)])
    monkeypatch.setattr(core, "volumes", lambda: [])
    assert cli.main(["status"]) == 0
    capsys.readouterr()
    assert cli.main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pools"][0]["data_percent"] == 100.0


def test_status_json_has_format_1(monkeypatch, capsys):
    monkeypatch.setattr(core, "status", lambda: [pool()])
    monkeypatch.setattr(core, "volumes", lambda: [])
    assert cli.main(["status", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == 1 and doc["pools"][0]["pool"] == "thinpool"
    assert doc["volumes"] == [] and "check" not in doc


def test_status_prometheus_to_a_file_atomically(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(core, "status", lambda: [pool()])
    monkeypatch.setattr(core, "volumes", lambda: [])
    monkeypatch.setattr(core, "last_apply", lambda: {"timestamp": 1700000000.5, "success": True})
    out = tmp_path / "textfile" / "direct-lvm.prom"
    assert cli.main(["status", "--format", "prometheus", "--output", str(out)]) == 0
    assert capsys.readouterr().out == ""
    text = out.read_text()
    assert 'direct_lvm_pool_data_percent{vg="docker",pool="thinpool"} 12.3\n' in text
    assert "direct_lvm_last_apply_timestamp_seconds 1.7e+09" not in text
    assert "direct_lvm_last_apply_timestamp_seconds 1700000000.5\n" in text
    assert [p.name for p in out.parent.iterdir()] == ["direct-lvm.prom"]  # no temp file left


def test_status_output_needs_the_prometheus_format(tmp_path, capsys):
    assert cli.main(["status", "--output", str(tmp_path / "x.prom")]) == 2
    err = capsys.readouterr().err
    assert f"--output {tmp_path}/x.prom is for the Prometheus textfile only" in err
    assert "fix: add --format prometheus" in err


class _Exited(Exception):
    """os._exit, faked: the code it was given."""


def _fake_exit(monkeypatch, calls):
    import os

    def fake(code):
        calls.append(("_exit", code))
        raise _Exited(code)

    monkeypatch.setattr(os, "_exit", fake)


class _Stream:
    """A stream that records its flushes (or fails them: a closed pipe)."""

    def __init__(self, name, calls, fail=False):
        self.name, self.calls, self.fail = name, calls, fail

    def write(self, text):
        return len(text)

    def flush(self):
        self.calls.append(("flush", self.name))
        if self.fail:
            raise BrokenPipeError(32, "Broken pipe")


def test_entry_flushes_stdout_and_stderr_then_exits_with_mains_code(monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "main", lambda: 4)
    monkeypatch.setattr(sys, "stdout", _Stream("stdout", calls))
    monkeypatch.setattr(sys, "stderr", _Stream("stderr", calls))
    _fake_exit(monkeypatch, calls)
    with pytest.raises(_Exited):
        cli.entry()
    assert calls == [("flush", "stdout"), ("flush", "stderr"), ("_exit", 4)]


def test_entry_leaves_a_failed_flush_to_pythons_own_exit(monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "main", lambda: 0)
    monkeypatch.setattr(sys, "stdout", _Stream("stdout", calls, fail=True))
    _fake_exit(monkeypatch, calls)
    with pytest.raises(SystemExit) as exc:
        cli.entry()
    assert exc.value.code == 0
    assert ("_exit", 0) not in calls


def test_entry_lets_mains_system_exit_through(monkeypatch, capsys):
    calls = []
    _fake_exit(monkeypatch, calls)
    monkeypatch.setattr(sys, "argv", ["direct-lvm", "--version"])
    with pytest.raises(SystemExit) as exc:
        cli.entry()
    assert exc.value.code == 0
    assert calls == []
    assert capsys.readouterr().out == f"direct-lvm {cli.__version__}\n"


def test_the_command_and_python_m_go_through_entry():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pyproject = (root / "pyproject.toml").read_text()
    assert '\n[project.scripts]\ndirect-lvm = "direct_lvm.cli:entry"\n' in pyproject
    assert "entry()" in (root / "src/direct_lvm/__main__.py").read_text()
