#!/bin/bash
# Smoke job: thin pool on the data disk /dev/vdb, dmeventd monitoring, docker up.
set -euxo pipefail
out=${DL_OUT:-/job/out}

modprobe dm_thin_pool
dmsetup targets | tee "$out/dm-targets.txt" | grep -q thin-pool

data=/dev/disk/by-id/virtio-dldata0
test "$(readlink -f "$data")" = /dev/vdb
pvcreate -y /dev/vdb
vgcreate dlvg /dev/vdb
lvcreate -y --type thin-pool -L 1G -n pool dlvg
lvs --reportformat json -o lv_name,lv_attr,seg_monitor dlvg | tee "$out/lvs.json"
grep -q '"seg_monitor":"monitored"' "$out/lvs.json"
systemctl is-active dm-event.service | tee "$out/dm-event-active.txt"

systemctl start docker
docker info --format '{{.Driver}}' | tee "$out/docker-driver.txt"
docker version --format '{{.Server.Version}}' | tee "$out/docker-version.txt"
containerd --version | tee "$out/containerd-version.txt"
uname -r | tee "$out/uname.txt"
echo ok >"$out/done"
