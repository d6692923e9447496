"""A busybox image for ctr, built in the guest without network: an OCI image layout
(one uncompressed layer holding /bin/busybox and /bin/sh) packed as a tar."""

import hashlib
import io
import json
import tarfile
import time
from contextlib import contextmanager
from pathlib import Path

REF = "docker.io/dl/busybox:latest"


def _blob(out: tarfile.TarFile, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    out.addfile(info, io.BytesIO(data))
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _file(out: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    out.addfile(info, io.BytesIO(data))


def busybox_layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as layer:
        layer.add("/bin/busybox", arcname="bin/busybox")
        link = tarfile.TarInfo("bin/sh")
        link.type, link.linkname = tarfile.SYMTYPE, "busybox"
        layer.addfile(link)
    return buf.getvalue()


def build_oci_archive(path: Path) -> Path:
    layer = busybox_layer()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }).encode()  # fmt: skip
    with tarfile.open(path, "w") as out:
        _file(out, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        layer_desc = _blob(out, layer)
        config_desc = _blob(out, config)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer_desc}],
        }).encode()  # fmt: skip
        manifest_desc = _blob(out, manifest)
        index = {"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest_desc,
            "annotations": {"io.containerd.image.name": REF,
                            "org.opencontainers.image.ref.name": "latest"},
        }]}  # fmt: skip
        _file(out, "index.json", json.dumps(index).encode())
    return path


@contextmanager
def running_container(host, name: str):
    """A busybox container kept running on the devmapper snapshotter while the block runs,
    then killed and removed. Its snapshot is an active thin device for exactly that long
    (after `ctr run --rm` containerd removes it asynchronously: a check then races it)."""
    host.check_output(f"ctr run -d --snapshotter devmapper {REF} {name} /bin/busybox sleep 900")
    try:
        yield
    finally:
        host.run(f"ctr task kill -s SIGKILL {name}")
        deadline = time.monotonic() + 60
        while host.run(f"ctr task rm {name}").rc != 0 and time.monotonic() < deadline:
            time.sleep(0.2)  # poll: the task is stopped once the kill is delivered
        host.check_output(f"ctr container rm {name}")


def our_thin_devices(host, pool_dm: str) -> tuple[list[str], str]:
    """(the `dmsetup table` lines of thin devices named <pool_dm>-..., the pool's major:minor)."""
    major_minor = host.check_output(
        f"dmsetup info -c --noheadings -o major,minor {pool_dm}"
    ).strip()
    tables = host.check_output("dmsetup table").splitlines()
    thins = [t for t in tables if t.split()[3:4] == ["thin"] and t.startswith(f"{pool_dm}-")]
    return thins, major_minor
