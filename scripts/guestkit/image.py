"""Build and cache a bootable Debian guest image (root.raw + kernel + initrd).

The image is made without loop mounts: debootstrap into a directory, configure
it, copy kernel/initrd out of /boot, then `mkfs.ext4 -d` the directory into a
sparse raw file. Results are cached under <cache>/<dist>/ keyed by a stamp that
hashes every input; a matching stamp means the cached image is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from ._proc import file_lock, log, phase, run
from .kernel import KernelExtractError, extract_vmlinux
from .model import GuestImage
from .vm import run_job

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPO_ROOT / ".cache" / "guest"
MIRROR = "http://deb.debian.org/debian"
DEFAULT_ROOT_SIZE = "4G"
HOSTNAME = "dl-guest"
ROOT_LABEL = "root"

# Present under these names in bullseye, bookworm and trixie. No python3-pip: guests
# get direct-lvm from its .deb (apt-get install ./direct-lvm_*.deb, offline), so the
# image carries every Depends of that package (DEB_DEPENDS, checked in the manifest).
DEB_DEPENDS: tuple[str, ...] = (
    "python3", "python3-jinja2", "python3-yaml", "python3-jsonschema", "python3-tomlkit",
    "lvm2", "dmeventd", "thin-provisioning-tools",
)
PACKAGES: tuple[str, ...] = (
    *DEB_DEPENDS,
    "systemd", "systemd-sysv", "udev", "dbus", "kmod",
    "docker.io", "containerd", "apparmor", "cloud-init",
    "python3-pytest", "python3-cffi-backend",
    "busybox-static", "linux-image-amd64", "initramfs-tools",
    "e2fsprogs", "xfsprogs", "util-linux", "dosfstools", "mtools",
    "iproute2", "iptables", "procps", "openssh-server",
)
# Never in an image: direct-lvm is installed by apt from its .deb.
FORBIDDEN_PACKAGES = ("python3-pip",)

# bullseye has no python3-testinfra (its in-guest suites get a small subprocess-based
# `host` fixture instead, see tests/guest/in_guest/conftest.py). From trixie on the
# docker CLI is its own package (only Recommended by docker.io, and debootstrap
# installs no Recommends); bullseye's and bookworm's docker.io contain it. bookworm
# also carries podman (4.3), whose containers-storage root the podman runtime puts on
# its own LV (tests/guest/test_guest_lvroot.py), with containernetworking-plugins:
# podman's golang-github-containers-common depends on the virtual
# container-network-stack, which debootstrap does not resolve by itself.
DIST_EXTRA_PACKAGES: dict[str, tuple[str, ...]] = {
    "bullseye": (),
    "bookworm": ("python3-testinfra", "podman", "containernetworking-plugins"),
}
NEWER_DIST_EXTRA_PACKAGES = ("python3-testinfra", "docker-cli")


def packages_for(dist: str) -> tuple[str, ...]:
    """The debootstrap include list for dist."""
    return PACKAGES + DIST_EXTRA_PACKAGES.get(dist, NEWER_DIST_EXTRA_PACKAGES)


# Tests start these themselves.
DISABLED_UNITS = ("docker.service", "docker.socket", "containerd.service")
# LVM monitoring of thin pools needs dmeventd (socket-activated via dm-event.socket).
REQUIRED_ENABLED_UNITS = ("dm-event.socket", "lvm2-monitor.service")
JOB_UNITS = ("dl-job.service", "dl-job-failed.service")
GUEST_FILES_DIR = Path(__file__).resolve().parent / "guest"
_SOURCE_FILES = (Path(__file__).resolve(), Path(__file__).resolve().parent / "kernel.py")
WARMUP_JOB = GUEST_FILES_DIR / "warmup"
WARMUP_TIMEOUT_S = 900
JOURNALD_DROPIN = ("[Journal]\n# guestkit: persist no journal into the image or overlays.\n"
                   "Storage=volatile\n")

STAMP = "stamp.json"


def build_image(dist: str = "bookworm", cache: Path = DEFAULT_CACHE, *,
                root_size: str = DEFAULT_ROOT_SIZE, force: bool = False) -> GuestImage:
    """Return the cached image for dist, building it first if missing or stale."""
    cache = cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    stamp = input_stamp(dist, root_size)
    final = cache / dist
    with file_lock(cache / f".{dist}.lock"):
        if not force and _read_stamp(final) == stamp:
            log(f"reusing cached {dist} image in {final}")
            return _load(final)
        log(f"building {dist} image into {final} (stamp {stamp[:12]})")
        start = time.monotonic()
        _build_atomically(dist, cache, final, stamp, root_size)
        log(f"{dist} image built in {time.monotonic() - start:.1f}s")
        return _load(final)


def input_stamp(dist: str, root_size: str) -> str:
    """Hash of everything that determines the image contents."""
    sources = {p.name: _sha256(p) for p in sorted(_SOURCE_FILES)}
    sources |= {str(p.relative_to(GUEST_FILES_DIR)): _sha256(p)
                for p in sorted(GUEST_FILES_DIR.rglob("*")) if p.is_file()}
    payload = {"dist": dist, "mirror": MIRROR, "packages": packages_for(dist),
               "root_size": root_size, "sources": sources}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()



def _read_stamp(image_dir: Path) -> str | None:
    try:
        return str(json.loads((image_dir / STAMP).read_text())["stamp"])
    except (FileNotFoundError, KeyError, ValueError):
        return None


def _load(image_dir: Path) -> GuestImage:
    meta = json.loads((image_dir / STAMP).read_text())
    vmlinux = image_dir / "vmlinux"
    bzimage = image_dir / "vmlinuz"
    return GuestImage(
        dist=meta["dist"], root=image_dir / "root.raw",
        kernel=vmlinux if meta["pvh"] else bzimage,
        vmlinux=vmlinux if vmlinux.exists() else None,
        initrd=image_dir / "initrd.img", bzimage=bzimage,
        kernel_version=meta["kernel_version"], manifest=image_dir / "packages.txt",
        stamp=meta["stamp"],
    )


def _build_atomically(dist: str, cache: Path, final: Path, stamp: str, root_size: str) -> None:
    build_dir = Path(tempfile.mkdtemp(prefix=f".build-{dist}-", dir=cache))
    try:
        meta = _build_into(dist, cache, build_dir, root_size)
        (build_dir / STAMP).write_text(json.dumps({**meta, "dist": dist, "stamp": stamp},
                                                  indent=2) + "\n")
        _replace_dir(build_dir, final)
    except BaseException:
        _keep_logs(build_dir, cache / f"{dist}.failed")
        raise
    finally:
        if build_dir.exists():
            _safe_rmtree(build_dir)


def _keep_logs(build_dir: Path, dest: Path) -> None:
    """Keep build.log and warm-up console logs of a failed build for inspection."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    if (build_dir / "build.log").exists():
        shutil.copy2(build_dir / "build.log", dest)
    if (build_dir / "warmup").exists():
        shutil.copytree(build_dir / "warmup", dest / "warmup")
    log(f"build failed; logs kept in {dest}")


def _replace_dir(new: Path, final: Path) -> None:
    old = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        final.rename(old)
    new.rename(final)
    if old is not None:
        _safe_rmtree(old)


def _build_into(dist: str, cache: Path, build_dir: Path, root_size: str) -> dict[str, object]:
    rootfs = build_dir / "rootfs"
    build_log = build_dir / "build.log"
    with phase(f"debootstrap {dist} ({len(packages_for(dist))} packages + deps)"):
        _debootstrap(dist, rootfs, cache / "debs" / dist, build_log)
    with phase("configure rootfs"):
        configure_rootfs(rootfs, build_log)
    with phase("extract kernel + initrd"):
        kernel_meta = _extract_boot_files(rootfs, build_dir, build_log)
    with phase("package manifest"):
        _write_manifest(rootfs, build_dir / "packages.txt")
        check_manifest((build_dir / "packages.txt").read_text())
    with phase(f"mkfs.ext4 -d ({root_size})"):
        run(["mkfs.ext4", "-q", "-F", "-L", ROOT_LABEL, "-d", rootfs,
             build_dir / "root.raw", root_size], log_file=build_log)
    _safe_rmtree(rootfs)
    with phase("warm-up boot"):
        kernel_meta["pvh"] = _warm_up(build_dir, dist, bool(kernel_meta["pvh"]), build_log)
    return kernel_meta


def _warm_up(build_dir: Path, dist: str, pvh: bool, build_log: Path) -> bool:
    """Boot the new root once and commit the result into root.raw.

    This caches per-boot work (the AppArmor policy compile costs ~20 s per boot
    under TCG) and proves the image boots. The PVH vmlinux is tried first; the
    bzImage is the fallback. Returns whether the vmlinux is the kernel to use.
    """
    kernels = [build_dir / "vmlinux", build_dir / "vmlinuz"] if pvh else [build_dir / "vmlinuz"]
    for kernel in kernels:
        overlay = build_dir / "warmup.qcow2"
        overlay.unlink(missing_ok=True)
        image = GuestImage(dist=dist, root=build_dir / "root.raw", kernel=kernel,
                           initrd=build_dir / "initrd.img", bzimage=build_dir / "vmlinuz",
                           vmlinux=None, kernel_version="", manifest=build_dir / "packages.txt",
                           stamp="")
        result = run_job(image, WARMUP_JOB, out_dir=build_dir / "warmup" / kernel.name,
                         root_overlay=overlay, timeout=WARMUP_TIMEOUT_S)
        if result.ok:
            run(["qemu-img", "commit", "-q", overlay], log_file=build_log)
            overlay.unlink()
            _fsck(build_dir / "root.raw", build_log)
            return kernel.name == "vmlinux"
        log(f"warm-up boot with {kernel.name} failed: {result.summary()}")
    raise RuntimeError(f"the {dist} image did not boot (warm-up console logs are kept)")


def _fsck(root: Path, build_log: Path) -> None:
    """The warm-up guest stops without unmounting /: replay the journal now."""
    proc = run(["e2fsck", "-f", "-y", root], log_file=build_log, check=False)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"e2fsck {root} exited {proc.returncode}")


def _debootstrap(dist: str, rootfs: Path, debs: Path, build_log: Path) -> None:
    debs.mkdir(parents=True, exist_ok=True)
    run(["debootstrap", "--variant=minbase", "--components=main",
         f"--include={','.join(packages_for(dist))}", f"--cache-dir={debs}",
         dist, rootfs, MIRROR], log_file=build_log)


def configure_rootfs(rootfs: Path, build_log: Path) -> None:
    """Apply guest configuration to a debootstrapped tree (no mounts needed)."""
    _write(rootfs / "etc/fstab", f"LABEL={ROOT_LABEL} / ext4 defaults,errors=remount-ro 0 0\n")
    _write(rootfs / "etc/hostname", f"{HOSTNAME}\n")
    _write(rootfs / "etc/hosts", f"127.0.0.1 localhost\n127.0.1.1 {HOSTNAME}\n"
                                 "::1 localhost ip6-localhost ip6-loopback\n")
    _write(rootfs / "etc/systemd/journald.conf.d/guestkit.conf", JOURNALD_DROPIN)
    run(["chroot", rootfs, "passwd", "-d", "root"], log_file=build_log)
    _install_job_runner(rootfs)
    systemctl = ["systemctl", f"--root={rootfs}"]
    run([*systemctl, "disable", *DISABLED_UNITS], log_file=build_log)
    run([*systemctl, "enable", *REQUIRED_ENABLED_UNITS, "dl-job.service"], log_file=build_log)
    _check_unit_states(rootfs)
    _clean_apt(rootfs, build_log)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _install_job_runner(rootfs: Path) -> None:
    runner = GUEST_FILES_DIR / "dl-job-runner"
    _write(rootfs / "usr/local/sbin/dl-job-runner", runner.read_text(), 0o755)
    for unit in JOB_UNITS:
        _write(rootfs / "etc/systemd/system" / unit, (GUEST_FILES_DIR / unit).read_text())
    (rootfs / "job").mkdir(exist_ok=True)


def _check_unit_states(rootfs: Path) -> None:
    expected = {u: "disabled" for u in DISABLED_UNITS}
    expected |= {u: "enabled" for u in (*REQUIRED_ENABLED_UNITS, "dl-job.service")}
    for unit, want in expected.items():
        proc = run(["systemctl", f"--root={rootfs}", "is-enabled", unit],
                   capture=True, check=False)
        got = proc.stdout.decode().strip()
        if got != want:
            raise RuntimeError(f"{unit} is {got!r} in the image, expected {want!r}")


def _clean_apt(rootfs: Path, build_log: Path) -> None:
    run(["chroot", rootfs, "apt-get", "clean"], log_file=build_log)
    for pattern in ("var/lib/apt/lists/*_*", "var/cache/apt/*.bin", "var/cache/debconf/*-old",
                    "var/lib/dpkg/*-old", "var/log/apt/*", "var/log/dpkg.log",
                    "var/log/bootstrap.log", "var/log/alternatives.log"):
        for path in rootfs.glob(pattern):
            path.unlink()


def _extract_boot_files(rootfs: Path, build_dir: Path, build_log: Path) -> dict[str, object]:
    boot = rootfs / "boot"
    kernels = sorted(boot.glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise RuntimeError(f"expected exactly one kernel in {boot}, found {kernels}")
    version = kernels[0].name.removeprefix("vmlinuz-")
    initrd = boot / f"initrd.img-{version}"
    if not initrd.exists():
        run(["chroot", rootfs, "update-initramfs", "-c", "-k", version], log_file=build_log)
    _check_initrd_modules(rootfs, version, build_log)
    shutil.copyfile(kernels[0], build_dir / "vmlinuz")
    shutil.copyfile(initrd, build_dir / "initrd.img")
    pvh = _try_extract_vmlinux(build_dir / "vmlinuz", build_dir / "vmlinux")
    return {"kernel_version": version, "pvh": pvh}


def _try_extract_vmlinux(bzimage: Path, dest: Path) -> bool:
    try:
        pvh = extract_vmlinux(bzimage, dest)
    except KernelExtractError as exc:
        log(f"vmlinux extraction failed, will boot the bzImage: {exc}")
        return False
    if not pvh:
        log("vmlinux has no PVH entry note, will boot the bzImage")
        dest.unlink()
    return pvh


def _check_initrd_modules(rootfs: Path, version: str, build_log: Path) -> None:
    """The initramfs must be able to mount an ext4 root on virtio-blk."""
    listing = run(["chroot", rootfs, "lsinitramfs", f"/boot/initrd.img-{version}"],
                  capture=True).stdout.decode()
    builtin = (rootfs / f"lib/modules/{version}/modules.builtin").read_text()
    for module in ("virtio_blk", "virtio_pci", "ext4"):
        if f"/{module}.ko" not in listing and f"/{module}.ko" not in builtin:
            raise RuntimeError(f"initramfs lacks {module}.ko: root on virtio-blk ext4 won't mount")
    with build_log.open("a") as fh:
        fh.write(f"initramfs checked: virtio_blk, virtio_pci, ext4 present for {version}\n")


def _write_manifest(rootfs: Path, dest: Path) -> None:
    proc = run(["chroot", rootfs, "dpkg-query", "-W", "-f", "${Package} ${Version}\\n"],
               capture=True)
    dest.write_bytes(proc.stdout)


def check_manifest(manifest: str) -> None:
    """The image has every Depends of our .deb and none of FORBIDDEN_PACKAGES."""
    installed = {line.split()[0] for line in manifest.splitlines() if line.strip()}
    missing = sorted(set(DEB_DEPENDS) - installed)
    if missing:
        raise RuntimeError(f"the image lacks {missing}: the .deb would not install offline")
    forbidden = sorted(installed & set(FORBIDDEN_PACKAGES))
    if forbidden:
        raise RuntimeError(f"the image has {forbidden}: direct-lvm is installed from its .deb")


def _mounts_under(path: Path) -> list[Path]:
    prefix = str(path.resolve())
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = Path(line.split()[4].replace("\\040", " "))
        if str(mount_point) == prefix or str(mount_point).startswith(prefix + "/"):
            mounts.append(mount_point)
    return mounts


def _safe_rmtree(path: Path) -> None:
    """rmtree that first unmounts anything a failed debootstrap left mounted inside."""
    for mount_point in sorted(_mounts_under(path), key=lambda p: len(p.parts), reverse=True):
        run(["umount", "--lazy", mount_point], check=False)
    if _mounts_under(path):
        raise RuntimeError(f"refusing to delete {path}: still has mounts inside")
    shutil.rmtree(path)
