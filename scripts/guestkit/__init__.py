"""guestkit: build a Debian qemu guest image and run test jobs inside it."""
