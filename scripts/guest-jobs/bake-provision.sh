#!/bin/bash
# Packer provisioner (packer/direct-lvm.pkr.hcl), run as root in the image being baked:
# make sure the packages are there, install direct-lvm's .deb with apt (no pip), register
# its cloud-init module, enable the runtime without starting it. Works offline when the
# base image already has the packages: the archive is only used for missing ones.
#   BAKE_PACKAGES  Debian packages the image needs (space-separated)
#   BAKE_UNITS     units to enable, not start
#   BAKE_DEB       the uploaded direct-lvm_VERSION_all.deb (an absolute path)
set -euo pipefail
: "${BAKE_PACKAGES:?}" "${BAKE_UNITS:?}" "${BAKE_DEB:?}"
say() { echo "bake: $*"; }

read -ra packages <<<"$BAKE_PACKAGES"
read -ra units <<<"$BAKE_UNITS"

# Installing a package must not start what it ships: a runtime would initialize its
# storage in the image.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]} (needs the network)"
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    say "already installed: ${packages[*]}"
fi

# The .deb's Depends are in the list above, so this needs no network.
say "installing $(basename "$BAKE_DEB")"
apt-get install -y -q --no-install-recommends "$BAKE_DEB"
apt-get clean
dpkg-query -W -f='${Package} ${Version} ${Status}\n' direct-lvm
direct-lvm --version
direct-lvm image-setup

systemctl enable "${units[@]}"
systemctl daemon-reload

# What the image must look like: no pool, and a runtime that never ran here.
if vgs --noheadings -o vg_name,vg_tags 2>/dev/null | grep -qw direct_lvm; then
    say "a direct_lvm volume group exists in the image being baked"; exit 1
fi
for u in "${units[@]}"; do
    if systemctl is-active -q "$u"; then say "$u is running during the bake"; exit 1; fi
done
for d in overlay2 devicemapper aufs btrfs zfs vfs image containers; do
    if [ -e "/var/lib/docker/$d" ]; then
        say "/var/lib/docker/$d exists: docker has initialized storage in the base image"
        exit 1
    fi
done
say "provisioned: $(systemctl is-enabled "${units[@]}" | tr '\n' ' ')"
