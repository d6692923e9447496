import shutil
from pathlib import Path

import yaml

from direct_lvm.image import (
    CONTAINERD_ORDER_DROPIN,
    ORDER_DROPIN,
    OUR_CFG,
    current_modules,
    image_setup,
)

DATA = Path(__file__).parent / "data"


def fake_root(tmp_path: Path) -> Path:
    (tmp_path / "etc/cloud/cloud.cfg.d").mkdir(parents=True)
    shutil.copy(DATA / "cloud.cfg-bookworm", tmp_path / "etc/cloud/cloud.cfg")
    return tmp_path


def test_image_setup_registers_the_module_after_mounts(tmp_path):
    root = fake_root(tmp_path)
    before = current_modules(root)
    image_setup(root)
    cfg = yaml.safe_load((root / OUR_CFG).read_text())
    mods = cfg["cloud_init_modules"]
    assert mods[mods.index("mounts") + 1] == ["direct_lvm", "always"]
    # the distribution's list is kept whole, in order
    assert [m for m in mods if m != ["direct_lvm", "always"]] == before
    for path in (ORDER_DROPIN, CONTAINERD_ORDER_DROPIN):  # docker and containerd alike
        assert "[Unit]\nAfter=cloud-init.service\n" in (root / path).read_text()


def test_image_setup_is_idempotent(tmp_path):
    root = fake_root(tmp_path)
    image_setup(root)
    first = (root / OUR_CFG).read_text()
    image_setup(root)
    assert (root / OUR_CFG).read_text() == first
    mods = yaml.safe_load(first)["cloud_init_modules"]
    assert sum(1 for m in mods if m == ["direct_lvm", "always"]) == 1


def test_image_setup_follows_an_admin_override_in_cloud_cfg_d(tmp_path):
    root = fake_root(tmp_path)
    (root / "etc/cloud/cloud.cfg.d/50_site.cfg").write_text(
        "cloud_init_modules: [bootcmd, write_files]\n"
    )
    image_setup(root)
    mods = yaml.safe_load((root / OUR_CFG).read_text())["cloud_init_modules"]
    assert mods == ["bootcmd", "write_files", ["direct_lvm", "always"]]


def test_image_setup_creates_no_pool_and_runs_nothing(tmp_path):
    # the unit conftest fails any subprocess call: reaching here proves none ran
    written = image_setup(fake_root(tmp_path))
    assert {p.relative_to(tmp_path).as_posix() for p in written} == {
        OUR_CFG,
        ORDER_DROPIN,
        CONTAINERD_ORDER_DROPIN,
    }
