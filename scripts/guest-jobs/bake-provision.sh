#!/bin/bash
# Packer provisioner (packer/direct-lvm.pkr.hcl), run as root in the image being baked:
# make sure the packages are there, install direct-lvm, register its cloud-init module,
# enable the runtime without starting it. Works offline when the base image already has
# the packages: apt is only used for missing ones.
#   BAKE_PACKAGES  Debian packages the image needs (space-separated)
#   BAKE_UNITS     units to enable, not start
#   BAKE_WHEEL     the uploaded direct_lvm wheel
set -euo pipefail
: "${BAKE_PACKAGES:?}" "${BAKE_UNITS:?}" "${BAKE_WHEEL:?}"
say() { echo "bake: $*"; }

read -ra packages <<<"$BAKE_PACKAGES"
read -ra units <<<"$BAKE_UNITS"

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]} (needs the network)"
    # Installing a runtime package must not start it: it would initialize its storage.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    apt-get clean
else
    say "already installed: ${packages[*]}"
fi

say "installing $(basename "$BAKE_WHEEL")"
pip install --no-deps --no-index --no-cache-dir --root-user-action=ignore \
    --break-system-packages "$BAKE_WHEEL"
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
