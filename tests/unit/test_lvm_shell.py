"""The lvm shell's pure parts (run.py): which commands go to it, how a command's JSON
document becomes an exit status, stdout and stderr, and its command profile. That the
shell answers as separate processes do is shown in a guest (in_guest/test_core.py)."""

import json
import os

import pytest

from direct_lvm import run


@pytest.mark.parametrize(
    ("argv", "shell"),
    [
        (("lvm", "fullreport", "--reportformat", "json", "--units", "b"), True),
        (("lvcreate", "--yes", "--type", "thin-pool", "--extents", "80%VG", "docker"), True),
        (("lvcreate", "--type", "thin-pool", "docker"), False),  # without --yes it can ask
        (("lvextend", "--extents", "+100%FREE", "docker/thinpool"), True),
        (("lvchange", "--metadataprofile", "docker-thinpool", "docker/thinpool"), True),
        (("vgcreate", "--addtag", "direct_lvm", "docker", "/dev/vdb"), False),  # Wipe it?
        (("vgextend", "docker", "/dev/vdc"), False),
        (("pvcreate", "/dev/vdb"), False),
        (("wipefs", "-a", "/dev/vdb"), False),
        (("lvs", "--select", "lv_name=a b"), False),  # a space: the shell would split it
        (("lvs", "'quoted'"), False),
        (("lvs", "#comment"), False),
        (("lvs", ""), False),
        (("lvm",), False),
        (("lvs", "--reportformat", "basic", "docker"), False),  # the shell's is json
        (("lvs", "--reportformat=json", "docker"), False),
        (("lvs", "--reportformat", "json", "--reportformat", "json"), False),
    ],
)
def test_which_commands_run_in_the_shell(argv, shell):
    assert run.in_lvm_shell(argv) is shell


def _status(ret, msg="success"):
    return {"log_type": "status", "log_context": "shell", "log_message": msg, "log_ret_code": ret}


def test_a_successful_report_is_the_json_lvm_prints():
    doc = {"report": [{"lv": [{"lv_name": "thinpool"}]}], "log": [_status("1")]}
    p = run._answer(("lvs",), doc, "")
    assert p.returncode == 0 and json.loads(p.stdout) == {"report": doc["report"]}
    assert p.stderr == ""


def test_a_failure_has_lvms_exit_code_and_its_messages_as_stderr():
    doc = {"log": [
        {"log_type": "print", "log_context": "processing", "log_message": "done"},
        {"log_type": "error", "log_context": "processing", "log_message": "VG x not found"},
        {"log_type": "warn", "log_context": "processing", "log_message": "WARNING: w"},
        {"log_type": "status", "log_context": "processing", "log_message": "failure",
         "log_ret_code": "5"},
        _status("5", "failure"),
    ]}  # fmt: skip
    p = run._answer(("lvs", "x"), doc, "lvs: raw\n")
    assert p.returncode == 5
    assert p.stderr == "lvs: raw\n  VG x not found\n  WARNING: w\n" and p.stdout == ""


def test_a_document_without_a_status_is_a_failure():
    assert run._answer(("lvs",), {"log": []}, "").returncode == 1


def test_the_profile_is_written_once_and_rewritten_when_it_differs(tmp_path):
    path = tmp_path / f"{run.SHELL_PROFILE_NAME}.profile"
    assert run._ensure_profile(str(tmp_path))
    assert path.read_text() == run.SHELL_PROFILE and oct(path.stat().st_mode & 0o777) == "0o644"
    before = path.stat().st_ino
    assert run._ensure_profile(str(tmp_path)) and path.stat().st_ino == before  # unchanged
    path.write_text("report {}\n")
    assert run._ensure_profile(str(tmp_path)) and path.read_text() == run.SHELL_PROFILE
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_without_a_profile_directory_there_is_no_shell(tmp_path):
    with run.lvm_shell(str(tmp_path / "missing")):
        assert not run._SHELL


class _FakeProc:
    def __init__(self):
        self.stdin = self.stderr = None
        self.waits = 0

    def wait(self):
        self.waits += 1
        return 0


def test_a_shell_is_closed_once():
    """A shell killed on a timeout is closed again as its block ends: its report pipe
    must not be closed twice (the fd number may belong to another file by then)."""
    r, w = os.pipe()
    os.close(w)
    shell = run._LvmShell(_FakeProc(), r)
    shell.close()
    shell.close()
    assert shell.proc.waits == 1
    with pytest.raises(OSError):
        os.fstat(r)


def test_the_shell_is_sent_argv_without_reportformat_json():
    """lvm >= 2.03.17 refuses --reportformat in its shell (trixie's 2.03.31 did); the
    shell's profile makes every report json. The argv logged stays the pasteable one."""
    argv = ("lvm", "fullreport", "--reportformat", "json", "--units", "b")
    assert run._shell_words(argv) == ["lvm", "fullreport", "--units", "b"]
    assert run._shell_words(("lvchange", "-ay", "docker/x")) == ["lvchange", "-ay", "docker/x"]
