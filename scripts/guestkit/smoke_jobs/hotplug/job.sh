#!/bin/bash
# Smoke job: wait for the host to hot-plug a virtio disk (QMP device_add) as /dev/vdc.
set -euo pipefail
out=${DL_OUT:-/job/out}
# vda is the root overlay, vdb the cold-plugged data disk (the job disk is sda).
test "$(readlink -f /dev/disk/by-id/virtio-dldata0)" = /dev/vdb
test ! -e /dev/vdc
echo DL-HOTPLUG-READY >/dev/console
for _ in $(seq 120); do
    [ -b /dev/vdc ] && break
    sleep 1
done
test -b /dev/vdc
udevadm settle
ls -l /dev/disk/by-id/ | tee "$out/by-id.txt"
test "$(readlink -f /dev/disk/by-id/virtio-dlhotplug)" = /dev/vdc
lsblk -b -o NAME,SIZE,SERIAL | tee "$out/lsblk.txt"
