"""image-setup checks that cloud-init's own Python imports direct-lvm's module, with a
real interpreter in a real chroot: a fake image root whose cloud-init entry point names
the host's /usr/bin/python3, which has the distribution's libraries but not direct-lvm
(as after a pipx or virtualenv install). Runs as an unprivileged user too: a user and
mount namespace (unshare -rm) gives chroot and bind mounts without root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST_PYTHON = Path("/usr/bin/python3")

# Inside the namespace: the host's interpreter and libraries at the same paths in the
# fake root (read-only binds), then the CLI under test, run by this test's Python.
IN_NS = """
set -eu
R=$1; shift
mount --bind -o ro /usr/lib "$R/usr/lib"
if [ -d /usr/lib64 ]; then mount --bind -o ro /usr/lib64 "$R/usr/lib64"; fi
mount --bind -o ro "$(readlink -f /usr/bin/python3)" "$R/usr/bin/python3"
exec "$@"
"""


def host_python_version() -> str:
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    out = subprocess.run([str(HOST_PYTHON), "-c", code], check=True, capture_output=True,
                         text=True).stdout  # fmt: skip
    return out.strip()


def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "image"
    for d in ("usr/lib", "usr/lib64", "usr/bin", "etc/cloud/cloud.cfg.d"):
        (root / d).mkdir(parents=True)
    for link in ("lib", "lib64", "bin"):
        (root / link).symlink_to(f"usr/{link}")
    (root / "usr/bin/python3").touch()  # the bind mount's target
    shutil.copy(ROOT / "tests/unit/data/cloud.cfg-bookworm", root / "etc/cloud/cloud.cfg")
    (root / "usr/bin/cloud-init").write_text(
        "#!/usr/bin/python3\nfrom cloudinit.cmd.main import main\nmain()\n"
    )
    return root


def image_setup(root: Path) -> subprocess.CompletedProcess[str]:
    if not shutil.which("unshare"):
        pytest.fail("unshare (util-linux) is needed for this test")
    return subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "bash", "-c", IN_NS, "ns",
         str(root), sys.executable, "-m", "direct_lvm", "image-setup", "--root", str(root)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip


def test_host_python_cannot_import_direct_lvm():
    # the premise: outside any install, the host's own Python does not have our package
    r = subprocess.run([str(HOST_PYTHON), "-c", "import direct_lvm"], capture_output=True)
    assert r.returncode != 0


def test_image_setup_fails_with_the_fix_when_cloud_inits_python_cannot_import(tmp_path):
    root = fake_root(tmp_path)
    r = image_setup(root)
    assert r.returncode == 1, r.stdout + r.stderr
    err = r.stderr
    assert "cloud-init's Python (/usr/bin/python3, from the #! line of" in err, err
    assert "No module named 'cc_direct_lvm'" in err, err
    assert "install the .deb" in err and "/usr/bin/python3 -m pip install" in err, err
    assert "Traceback" not in err
    # checked before anything was written
    assert not (root / "etc/cloud/cloud.cfg.d/90_direct_lvm.cfg").exists()
    assert not (root / "etc/direct-lvm/image-setup.json").exists()


def test_image_setup_passes_and_reports_version_and_carrier_when_it_imports(tmp_path):
    root = fake_root(tmp_path)
    site = root / f"usr/local/lib/python{host_python_version()}/dist-packages"
    shutil.copytree(ROOT / "src/direct_lvm", site / "direct_lvm",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copy(ROOT / "cloudinit_module/cc_direct_lvm.py", site)
    # a stand-in for cloud-init's package: what the module and the check import from it
    (site / "cloudinit").mkdir()
    (site / "cloudinit/__init__.py").write_text("")
    (site / "cloudinit/settings.py").write_text("PER_ALWAYS = 'always'\n")
    (site / "cloudinit/version.py").write_text("def version_string():\n    return '20.4.1'\n")
    r = image_setup(root)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert (
        "# cloud-init 20.4.1 runs on /usr/bin/python3, which imports cc_direct_lvm and "
        f"direct_lvm (/{site.relative_to(root)}/direct_lvm/__init__.py)" in out
    ), out
    assert "# recommended carrier: file (render --carrier file)" in out, out
    assert (root / "etc/cloud/cloud.cfg.d/90_direct_lvm.cfg").exists()
    assert '"cloud_init": "20.4.1"' in (root / "etc/direct-lvm/image-setup.json").read_text()
