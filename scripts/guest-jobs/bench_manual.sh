#!/bin/bash
# The hand procedure (Docker's direct-lvm steps), command for command, on $1 as VG $2,
# as the harness runs it: the docker drop-in is written and systemd reloaded;
# docker is not restarted. bash -x prints each command as "+ cmd" (the host counts lvm).
set -eux
dev=$1 vg=$2
pvcreate "$dev"
vgcreate "$vg" "$dev"
lvcreate --wipesignatures y -n thinpool "$vg" -l 95%VG
lvcreate --wipesignatures y -n thinpoolmeta "$vg" -l 1%VG
lvconvert -y --zero n -c 512K --thinpool "$vg/thinpool" --poolmetadata "$vg/thinpoolmeta"
printf 'activation {\n  thin_pool_autoextend_threshold=80\n  thin_pool_autoextend_percent=20\n}\n' \
  > "/etc/lvm/profile/$vg-thinpool.profile"
lvchange --metadataprofile "$vg-thinpool" "$vg/thinpool"
lvs -o+seg_monitor "$vg/thinpool" | grep -q monitored
mkdir -p /etc/systemd/system/docker.service.d
printf '[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// --storage-driver=devicemapper --storage-opt dm.thinpooldev=/dev/mapper/%s-thinpool --storage-opt dm.use_deferred_removal=true --storage-opt dm.use_deferred_deletion=true\n' "$vg" \
  > /etc/systemd/system/docker.service.d/zz-manual-bench.conf
systemctl daemon-reload
