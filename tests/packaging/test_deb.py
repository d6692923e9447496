"""The .deb from scripts/build-deb (debhelper, dh-python): what it installs, what it
depends on, lintian, and the generated man page and completions as shipped."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from direct_lvm import __version__

pytestmark = pytest.mark.packaging

SITE = "/usr/lib/python3/dist-packages"
BASH_COMPLETION = "/usr/share/bash-completion/completions/direct-lvm"
ZSH_COMPLETION = "/usr/share/zsh/vendor-completions/_direct-lvm"


def run(*argv: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)


def git_status(root: Path) -> str:
    out = run("git", "-C", str(root), "status", "--porcelain", "--ignored=no")
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="session")
def deb(build, root) -> Path:
    before = git_status(root)
    path = build("build-deb")
    assert path == root / "dist" / f"direct-lvm_{__version__}_all.deb"
    # Built from a copy: the tree has no debian/.debhelper, .pybuild or generated files.
    assert git_status(root) == before
    return path


@pytest.fixture(scope="session")
def contents(deb: Path) -> set[str]:
    out = run("dpkg-deb", "-c", str(deb))
    assert out.returncode == 0, out.stderr
    # "-rw-r--r-- root/root 1857 2026-11-30 00:00 ./usr/lib/..." -> "/usr/lib/..."
    return {line.split(None, 5)[5].split(" -> ")[0][1:] for line in out.stdout.splitlines()}


@pytest.fixture(scope="session")
def unpacked(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deb")
    out = run("dpkg-deb", "-x", str(deb), str(root))
    assert out.returncode == 0, out.stderr
    return root


def field(deb: Path, name: str) -> str:
    out = run("dpkg-deb", "-f", str(deb), name)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_installs_the_module_for_cloud_init_the_package_and_the_command(contents, root):
    assert f"{SITE}/cc_direct_lvm.py" in contents  # top level: cloud-init imports it so
    for name in ("__init__.py", "cli.py", "core.py", "schema/direct_lvm.schema.json"):
        assert f"{SITE}/direct_lvm/{name}" in contents
    for template in sorted((root / "templates").iterdir()):
        assert f"{SITE}/direct_lvm/templates/{template.name}" in contents
    assert "/usr/bin/direct-lvm" in contents
    # dh_python3 moved everything out of the versioned directory pybuild installed into.
    assert not [p for p in contents if re.match(r"/usr/lib/python3\.\d+/", p)]
    assert not [p for p in contents if "/tests/" in p or "/debian/" in p]


def test_ships_the_man_page_and_both_completions(contents):
    assert "/usr/share/man/man8/direct-lvm.8.gz" in contents
    assert BASH_COMPLETION in contents
    assert ZSH_COMPLETION in contents


def test_ships_the_systemd_units_of_the_tree_and_never_enables_them(deb, contents, units, tmp_path):
    shipped = units
    for unit in shipped:
        assert f"/lib/systemd/system/{unit}" in contents
    out = run("dpkg-deb", "-e", str(deb), str(tmp_path / "control"))
    assert out.returncode == 0, out.stderr
    postinst = tmp_path / "control" / "postinst"
    script = postinst.read_text() if postinst.exists() else ""
    assert "systemctl enable" not in script
    assert "deb-systemd-invoke start" not in script
    # dh_installsystemd --no-enable: `enable` only re-creates links an admin had made.
    enables = [line.strip() for line in script.splitlines() if "deb-systemd-helper enable" in line]
    assert len(enables) == script.count("was-enabled")
    if not shipped:
        assert "deb-systemd-helper" not in script


def test_depends_on_the_archive_libraries_and_lvm_and_a_python_bullseye_has(deb):
    assert field(deb, "Package") == "direct-lvm"
    assert field(deb, "Architecture") == "all"
    assert field(deb, "Version") == __version__
    depends = [d.strip() for d in field(deb, "Depends").split(",")]
    names = {re.split(r"[\s(:]", d)[0] for d in depends}
    assert {
        "python3-jinja2",
        "python3-yaml",
        "python3-jsonschema",
        "python3-tomlkit",
        "lvm2",
        "dmeventd",
        "thin-provisioning-tools",
    } <= names
    assert "python3" in names
    for dep in depends:
        if re.match(r"python3(:any)?\b(?!-)", dep):
            # bullseye has 3.9.2 and trixie 3.13: no floor above 3.9, no ceiling at all.
            assert "<<" not in dep and "<=" not in dep, dep
            floor = re.search(r">=\s*(\d+)\.(\d+)", dep)
            assert floor is None or (int(floor[1]), int(floor[2])) <= (3, 9), dep
    assert not [d for d in depends if "pip" in d]
    assert field(deb, "Recommends") == "cloud-init"


def test_lintian_reports_no_errors(deb):
    out = run("lintian", "--no-tag-display-limit", str(deb))
    errors = [line for line in out.stdout.splitlines() if line.startswith("E:")]
    assert errors == []
    assert out.returncode == 0, out.stdout + out.stderr


def test_man_page_renders_without_warnings_and_documents_every_command(unpacked):
    from direct_lvm import clidoc
    from direct_lvm.cli import build_parser

    page = unpacked / "usr/share/man/man8/direct-lvm.8.gz"
    env = {**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": "80", "MANROFFSEQ": ""}
    out = run("man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", str(page), env=env)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    text = run("man", "-l", str(page), env=env).stdout
    for cmd in clidoc.commands(build_parser()):
        assert f"direct-lvm {cmd.name}" in text


def test_bash_completion_parses_and_completes(unpacked, root):
    script = unpacked / BASH_COMPLETION.lstrip("/")
    assert run("bash", "-n", str(script)).returncode == 0

    def complete(*words: str) -> list[str]:
        words_sh = " ".join(f"'{w}'" for w in words)
        probe = (
            f"source '{script}'; COMP_WORDS=(direct-lvm {words_sh}); "
            f"COMP_CWORD={len(words)}; _direct_lvm; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        )
        out = run("bash", "-c", probe, cwd=root)
        assert out.returncode == 0, out.stderr
        return [w for w in out.stdout.splitlines() if w]

    assert complete("re") == ["reset", "render"]
    assert complete("render", "--carrier", "") == ["key", "file"]
    assert "--check" in complete("status", "--")
    assert complete("-v", "validate", "environ") == ["environments"]  # a file argument


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completion_parses(unpacked):
    script = unpacked / ZSH_COMPLETION.lstrip("/")
    assert script.read_text().startswith("#compdef direct-lvm\n")
    out = run("zsh", "-n", str(script))
    assert out.returncode == 0, out.stderr


def test_the_wheel_still_builds_with_the_module_and_templates(tmp_path, root):
    out = run(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        "-w", str(tmp_path), str(root),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("direct_lvm-*.whl")
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    assert "cc_direct_lvm.py" in names
    assert "direct_lvm/cli.py" in names
    assert "direct_lvm/templates/lvm-profile.profile.j2" in names
