"""direct-lvm: first-boot LVM thin pools for container runtimes."""

__version__ = "0.1.0"

# The LVM tag on every VG and LV direct-lvm creates: ownership is read back from LVM.
OWNER_TAG = "direct_lvm"
