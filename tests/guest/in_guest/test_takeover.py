"""First boot of an image in which docker already ran during the bake (overlay2 storage
with an image in it): the old storage is moved aside, never deleted, docker uses the pool."""

import json

import pytest
from cloudinit_helpers import assert_docker_on_pool

pytestmark = pytest.mark.usefixtures("cloud_init_settled")


def test_docker_on_the_pool(host):
    assert_docker_on_pool(host)
    assert not host.file("/var/lib/docker/overlay2").exists


def test_old_storage_kept_at_the_reported_backup(host):
    pools = json.loads(host.check_output("direct-lvm status --json"))["pools"]
    (backup,) = pools[0]["docker_backups"]
    assert backup.startswith("/var/lib/docker.direct-lvm-backup-")
    assert host.file(f"{backup}/overlay2").is_directory
    # the image imported during the bake is still in the backup's metadata
    repos = host.file(f"{backup}/image/overlay2/repositories.json").content_string
    assert "bake/busybox" in repos
    assert backup in host.check_output("direct-lvm status")


def test_bake_image_not_in_the_new_docker(host):
    assert "bake/busybox" not in host.check_output("docker images")
