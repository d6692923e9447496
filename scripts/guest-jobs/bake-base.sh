#!/bin/bash
# Job for guestkit's test image (scripts/bakekit/base.py): turn it into the base image
# `scripts/bake` starts from, i.e. what a stock cloud image is. It only fixes what the
# test image lacks for that role; it installs nothing (the guest has no network).
set -euxo pipefail

# A cloud image gets its network from cloud-init, which renders systemd-networkd files
# here (no ifupdown in the image): networkd has to run for them.
systemctl enable systemd-networkd.service
# The harness' job runner and its empty root password belong to the test image only.
systemctl disable dl-job.service
passwd -l root
# Like any image, this one gets its machine-id on first boot.
truncate -s 0 /etc/machine-id
# cloud-init's locale module generates the distro default (en_US.UTF-8) when no system
# locale is set, and fails here; cloud images set one.
update-locale LANG=C.UTF-8

cloud-init --version
cat /etc/default/locale
systemctl is-enabled systemd-networkd.service
