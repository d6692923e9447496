"""direct-lvm's Debian package for guests: guests, the demo, the bench and the Packer
bake install it with `apt-get install ./direct-lvm_<version>_all.deb` (offline: the
images carry its Depends), never with pip."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ._proc import file_lock

REPO_ROOT = Path(__file__).resolve().parents[2]


def build_deb(root: Path = REPO_ROOT, dest_dir: Path | None = None) -> Path:
    """Run scripts/build-deb (it prints the path of dist/direct-lvm_<ver>_all.deb).

    Builds are serialized by a lock (pytest-xdist workers each build once), and with
    dest_dir the .deb is copied there under that lock: a later build rewriting dist/
    never changes a copy a guest is being given."""
    (root / "dist").mkdir(exist_ok=True)
    with file_lock(root / "dist" / ".build-deb.lock"):
        proc = subprocess.run([str(root / "scripts" / "build-deb")], cwd=root,
                              capture_output=True, text=True, check=False)  # fmt: skip
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise RuntimeError(
                f"scripts/build-deb exited {proc.returncode}:\n{proc.stderr[-3000:]}")  # fmt: skip
        deb = Path(lines[-1])
        if not deb.is_absolute():
            deb = root / deb
        if not (deb.is_file() and deb.name.startswith("direct-lvm_")
                and deb.name.endswith("_all.deb")):  # fmt: skip
            raise RuntimeError(f"scripts/build-deb printed {lines[-1]!r}, not a direct-lvm .deb")
        if dest_dir is None:
            return deb
        dest_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(deb, dest_dir / deb.name))
