"""bakekit: bake a direct-lvm machine image for an environment with Packer (scripts/bake).

- base.py: the default base image (guestkit's bookworm image, made cloud-like)
- packer.py: run `packer build`/`validate`, stream progress, surface packer's errors
- bake.py: one bake: the .deb, throw-away ssh key and seed, packer, the artifact
- instance.py: boot an artifact under qemu with ssh forwarded to a loopback port
"""
