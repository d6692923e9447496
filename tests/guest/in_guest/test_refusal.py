"""docker-devicemapper asked of Docker >= 25: refused, naming the version, before any
disk is touched (the blank disk dl-data3's first MiB hashes the same)."""

import hashlib

DISK = "/dev/disk/by-id/virtio-dl-data3"


def first_mib_sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(1 << 20)).hexdigest()


def test_devicemapper_refused_on_docker_26_disk_untouched(host, cfg):
    before = first_mib_sha(DISK)
    version = host.check_output("dpkg-query -W -f '${Version}' docker.io")
    r = host.run(f"direct-lvm apply {cfg('devicemapper-c')}")
    assert r.rc == 2, r.stderr
    assert "no devicemapper storage driver (removed in Docker 25.0)" in r.stderr
    assert version in r.stderr  # the version found
    assert "docker-overlay2" in r.stderr and "containerd-devmapper" in r.stderr  # what to use
    assert first_mib_sha(DISK) == before
    assert host.run("vgs refused").rc != 0
    assert host.run(f"pvs {DISK}").rc != 0
    # and the plan refuses the same way without changing anything
    assert host.run(f"direct-lvm plan {cfg('devicemapper-c')}").rc == 2
