#!/bin/bash
set -eu
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  /job/dist/direct-lvm_*_all.deb >/job/out/apt.log 2>&1 || { cat /job/out/apt.log; exit 90; }
now() { date +%s.%N; }
manual() {  # the hand procedure, command for command (DEVELOPERS.md), on $1 as VG $2
  local dev=$1 vg=$2
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
}
cfg() { printf 'direct_lvm:\n  devices: [%s]\n  vg: %s\n' "$1" "$2" > "/tmp/$2.yaml"; }
results=()
round=0
for pair in "vdb vdc" "vdd vde"; do
  set -- $pair
  round=$((round + 1))
  s=$(now); manual "/dev/$1" "manual$round" > /job/out/manual$round.log 2>&1; e=$(now)
  results+=("{\"side\": \"manual\", \"round\": $round, \"seconds\": $(awk "BEGIN{print $e - $s}")}")
  rm -f /etc/systemd/system/docker.service.d/zz-manual-bench.conf
  cfg "/dev/$2" "direct$round"
  s=$(now); direct-lvm -v apply --no-restart "/tmp/direct$round.yaml" > /job/out/apply$round.log 2>&1; e=$(now)
  results+=("{\"side\": \"apply\", \"round\": $round, \"seconds\": $(awk "BEGIN{print $e - $s}")}")
  s=$(now); direct-lvm -v apply --no-restart "/tmp/direct$round.yaml" > /job/out/noop$round.log 2>&1; e=$(now)
  results+=("{\"side\": \"noop\", \"round\": $round, \"seconds\": $(awk "BEGIN{print $e - $s}")}")
  # the next round's apply must not see this round's VG as "the" docker VG: names differ
done
s=$(now); python3 -c 'import direct_lvm.cli' ; e=$(now)
results+=("{\"side\": \"python-import\", \"round\": 0, \"seconds\": $(awk "BEGIN{print $e - $s}")}")
(IFS=,; echo "[${results[*]}]") > /job/out/bench.json
