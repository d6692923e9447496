#!/bin/bash
set -eu
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  /job/dist/direct-lvm_*_all.deb >/job/out/apt.log 2>&1 || { cat /job/out/apt.log; exit 90; }
show() { echo; echo "$ $*"; "$@"; }
show cat /job/config.yaml
show direct-lvm plan /job/config.yaml
show direct-lvm apply /job/config.yaml
show direct-lvm status
show lvs -o+seg_monitor,chunk_size,lv_profile docker
show cat /etc/systemd/system/docker.service.d/direct-lvm.conf
echo; echo '$ docker info (storage)'; docker info 2>/dev/null | sed -n '/Storage Driver/,/Library Version/p'
mkdir -p /tmp/r/bin && cp /bin/busybox /tmp/r/bin/ && ln -sf busybox /tmp/r/bin/sh
tar -C /tmp/r -c . | docker import - demo/busybox >/dev/null
show docker run --rm --network none demo/busybox sh -c "echo hello from a container on the thin pool"
show direct-lvm apply /job/config.yaml
