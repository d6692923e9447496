#!/bin/bash
# Image warm-up job: runs once at image build time, on the image's own root,
# so per-boot work that can be cached (AppArmor policy cache) is done once.
# It also checks the unit states tests rely on.
set -euxo pipefail
out=${DL_OUT:-/job/out}

systemctl is-active apparmor.service
find /var/cache/apparmor -type f | tee "$out/apparmor-cache.txt"
if [ ! -s "$out/apparmor-cache.txt" ]; then
    echo "WARNING: apparmor.service wrote no policy cache; every boot will recompile" >&2
fi

for unit in docker.service docker.socket containerd.service; do
    test "$(systemctl is-enabled "$unit")" = disabled
    ! systemctl is-active -q "$unit"
done
systemctl is-active dm-event.socket
systemctl is-enabled lvm2-monitor.service

