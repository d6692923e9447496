import os

import pytest

from direct_lvm.runtimes._docker import parse_docker_version
from direct_lvm.runtimes._systemd import parse_show, unit_exec_start

BOOKWORM_UNIT = """[Unit]
Description=Docker Application Container Engine
After=network-online.target docker.socket firewalld.service containerd.service time-set.target
Wants=network-online.target containerd.service
Requires=docker.socket

[Service]
Type=notify
EnvironmentFile=-/etc/default/docker
ExecStart=/usr/sbin/dockerd -H fd:// $DOCKER_OPTS
ExecReload=/bin/kill -s HUP $MAINPID
"""


def test_unit_exec_start():
    assert unit_exec_start(BOOKWORM_UNIT) == "/usr/sbin/dockerd -H fd:// $DOCKER_OPTS"
    multi = "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd \\\n  -H fd://\n"
    assert unit_exec_start(multi) == "/usr/bin/dockerd    -H fd://"
    assert unit_exec_start("[Unit]\nExecStart=/x\n") is None


@pytest.mark.parametrize(
    ("text", "v"),
    [("Docker version 20.10.24+dfsg1, build 297e128", (20, 10)),
     ("Docker version 26.1.5+dfsg1, build a72d7cd", (26, 1)),
     ("garbage", None)],
)  # fmt: skip
def test_parse_docker_version(text, v):
    assert parse_docker_version(text) == v


def test_parse_show():
    assert parse_show("ActiveState=active\nMainPID=42\n") == {
        "ActiveState": "active",
        "MainPID": "42",
    }


def test_foreign_storage(tmp_path):
    from direct_lvm.runtimes._docker import foreign_storage

    root = tmp_path / "docker"
    assert foreign_storage(str(root)) == ()
    (root / "devicemapper" / "metadata").mkdir(parents=True)
    (root / "image" / "devicemapper").mkdir(parents=True)
    assert foreign_storage(str(root)) == ()  # docker on a thin pool: ours
    (root / "devicemapper" / "devicemapper").mkdir()
    (root / "devicemapper" / "devicemapper" / "data").write_bytes(b"")
    (root / "overlay2").mkdir()
    assert foreign_storage(str(root)) == (
        f"{root}/overlay2",
        f"{root}/devicemapper/devicemapper/data",
    )


def test_docker_version_from_dpkg():
    from direct_lvm.runtimes._systemd import parse_dpkg_versions

    out = "20.10.24+dfsg1-1+b3 installed\n"
    assert parse_dpkg_versions(out) == "20.10.24+dfsg1-1+b3"
    assert parse_docker_version(f"version {parse_dpkg_versions(out)}") == (20, 10)
    # docker-ce carries an epoch; a removed package keeps a 'config-files' line
    ce = "26.1.0-1 config-files\n5:24.0.7-1~debian.12~bookworm installed\n"
    assert parse_docker_version(f"version {parse_dpkg_versions(ce)}") == (24, 0)
    assert parse_dpkg_versions("") is None


DPKG_STATUS_TEXT = """Package: docker.io-doc
Status: install ok installed
Version: 1.0

Package: docker.io
Status: deinstall ok config-files
Priority: optional
Version: 26.1.0-1
Description: a removed package keeps its stanza
 Package: docker-ce
 Status: install ok installed

Package: docker-ce
Status: install ok installed
Architecture: amd64
Version: 5:24.0.7-1~debian.12~bookworm

Package: moby-engine
Status: install ok half-installed
Version: 20.10.1
"""


def test_docker_version_from_dpkgs_status_file(tmp_path, monkeypatch):
    """dpkg's database read as dpkg-query reads it: the first of the packages whose
    Status says installed; a removed package's stanza, a package whose name only starts
    the same, a description line and a half-installed one do not count."""
    from direct_lvm.runtimes import _systemd
    from direct_lvm.runtimes._docker import DOCKER_PACKAGES

    version = _systemd.parse_dpkg_status(DPKG_STATUS_TEXT, DOCKER_PACKAGES)
    assert version == "5:24.0.7-1~debian.12~bookworm"
    assert parse_docker_version(f"version {version}") == (24, 0)
    assert _systemd.parse_dpkg_status(DPKG_STATUS_TEXT, ("moby-engine",)) is None
    assert _systemd.parse_dpkg_status(DPKG_STATUS_TEXT, ("docker.io-doc",)) == "1.0"
    assert _systemd.parse_dpkg_status("", DOCKER_PACKAGES) is None
    status = tmp_path / "status"
    status.write_text(DPKG_STATUS_TEXT)
    monkeypatch.setattr(_systemd, "DPKG_STATUS", str(status))
    assert _systemd.dpkg_version(("moby-engine", "docker-ce")) == version  # no process


# ------------------------------------------------------------ unit state without systemctl

T0 = 1_700_000_000 * 10**9  # the files' time (ns); the last daemon-reload is an hour later
RELOAD = T0 + 3600 * 10**9


@pytest.fixture
def systemd_tree(tmp_path, monkeypatch):
    """A unit search path with docker.service and our drop-in, a cgroup v2 root, and a
    generator directory as the last daemon-reload left them (all files older)."""
    from direct_lvm.runtimes import _systemd

    etc, lib, cg, gen = (tmp_path / n for n in ("etc", "lib", "cgroup", "generator"))
    for d in (etc / "docker.service.d", lib, cg / "system.slice", gen):
        d.mkdir(parents=True)
    files = [lib / "docker.service", etc / "docker.service.d" / "direct-lvm.conf"]
    files[0].write_text("[Service]\nExecStart=/usr/sbin/dockerd -H fd://\n")
    files[1].write_text("[Service]\nEnvironmentFile=-/etc/direct-lvm/docker-storage.env\n")
    (cg / "cgroup.procs").write_text("1\n")
    for p in (*files, etc / "docker.service.d", etc, lib):
        os.utime(p, ns=(T0, T0))
    os.utime(gen, ns=(RELOAD, RELOAD))
    monkeypatch.setattr(_systemd, "UNIT_SEARCH", (str(etc), str(lib)))
    monkeypatch.setattr(_systemd, "CGROUP_ROOTS", (str(cg), str(tmp_path / "no-such")))
    monkeypatch.setattr(_systemd, "GENERATOR_DIRS", (str(gen), str(tmp_path / "no-gen")))

    def no_systemctl(argv, **kw):
        raise AssertionError(f"ran {argv}")

    monkeypatch.setattr(_systemd, "run", no_systemctl)
    return {"etc": etc, "lib": lib, "cgroup": cg, "generator": gen}


def test_a_stopped_docker_with_nothing_to_reload_needs_no_systemctl(systemd_tree):
    from direct_lvm.runtimes import _systemd

    assert _systemd.quiet_service("docker.service")
    assert _systemd.unit_state("docker.service", cheap=True) == (False, (), False)
    with pytest.raises(AssertionError, match="systemctl"):
        _systemd.unit_state("docker.service")  # not asked to be cheap: systemctl


def _old_slice_dropin(d):
    (d / "slice.conf").write_text("[Service]\nSlice=a.slice\n")
    for p in (d / "slice.conf", d):
        os.utime(p, ns=(T0, T0))  # only the Slice= line can tell


def _old_slice_unit(lib):
    unit = lib / "docker.service"
    unit.write_text(unit.read_text() + "Slice=a.slice\n")
    os.utime(unit, ns=(T0, T0))


def _newer(path):
    os.utime(path, ns=(RELOAD + 1, RELOAD + 1))


@pytest.mark.parametrize(
    "change",
    [
        # docker runs (or its cgroup is still there): systemd tells whether and how
        lambda t: (t["cgroup"] / "system.slice" / "docker.service").mkdir(),
        # a drop-in written after the last daemon-reload (a run stopped before its reload)
        lambda t: _newer(t["etc"] / "docker.service.d" / "direct-lvm.conf"),
        # one removed (its directory changed)
        lambda t: _newer(t["etc"] / "docker.service.d"),
        # the vendor unit replaced, a drop-in directory made, a type-wide drop-in
        lambda t: _newer(t["lib"] / "docker.service"),
        lambda t: (t["etc"] / "docker.service.d").rename(t["etc"] / "x.d"),  # a directory gone
        lambda t: (t["etc"] / "service.d").mkdir(),
        # docker's processes would be in another slice
        lambda t: _old_slice_dropin(t["etc"] / "docker.service.d"),
        lambda t: _old_slice_unit(t["lib"]),  # or the unit file itself says so
        # no generator directory, no cgroup hierarchy: cannot be told
        lambda t: t["generator"].rmdir(),
        lambda t: (t["cgroup"] / "cgroup.procs").unlink(),
    ],
)
def test_any_doubt_asks_systemctl(systemd_tree, change):
    from direct_lvm.runtimes import _systemd

    change(systemd_tree)
    assert not _systemd.quiet_service("docker.service")
    with pytest.raises(AssertionError, match="systemctl"):
        _systemd.unit_state("docker.service", cheap=True)
