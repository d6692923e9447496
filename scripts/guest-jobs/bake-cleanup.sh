#!/bin/bash
# Packer's last provisioner (packer/direct-lvm.pkr.hcl), run as root just before the
# image is shut down: remove everything of this build's instance, so that the image
# boots as a new instance, and the key Packer logged in with.
#   BAKE_DEB         the uploaded .deb (installed; the file itself is not kept)
#   BAKE_KEY_MARKER  comment of Packer's key in root's authorized_keys
set -euo pipefail
: "${BAKE_DEB:?}" "${BAKE_KEY_MARKER:?}"
say() { echo "bake: $*"; }

rm -f "$BAKE_DEB"

# Packer's login: its key line only (the image may authorize keys of its own).
# The connection Packer has open stays up until the shutdown.
for keys in /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys; do
    [ -f "$keys" ] || continue
    grep -v -F -e "$BAKE_KEY_MARKER" "$keys" >"$keys.bake" || true
    if [ -s "$keys.bake" ]; then
        cat "$keys.bake" >"$keys"
    else
        rm -f "$keys"
    fi
    rm -f "$keys.bake"
done
if grep -rqs -F -e "$BAKE_KEY_MARKER" /root/.ssh /home/*/.ssh; then
    say "Packer's key is still authorized somewhere"; exit 1
fi

# This instance's state: cloud-init's instance data and logs, the network files it
# rendered for this instance's NIC, the machine-id, ssh host keys, the journal.
cloud-init clean --logs
rm -f /etc/systemd/network/10-cloud-init-*.network /etc/netplan/50-cloud-init.yaml \
    /etc/network/interfaces.d/50-cloud-init
truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
rm -f /etc/ssh/ssh_host_*
journalctl --rotate --vacuum-time=1s >/dev/null 2>&1 || true
rm -rf /var/log/journal/*/
sync
say "cleaned: instance state, logs, machine-id, ssh host keys, Packer's key"
