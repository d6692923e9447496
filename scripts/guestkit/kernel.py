"""Extract the uncompressed ELF vmlinux from an x86 bzImage and check it boots via PVH.

qemu can boot an ELF vmlinux directly through the PVH entry point, which skips
the in-guest decompressor: a large win under TCG where decompression is slow.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import subprocess
import zlib
from pathlib import Path

from ._proc import run

_HDRS_OFFSET = 0x202
_SETUP_SECTS_OFFSET = 0x1F1
_PAYLOAD_OFFSET = 0x248  # payload_offset, payload_length (boot protocol >= 2.08)
_XEN_ELFNOTE_PHYS32_ENTRY = 18
_PT_NOTE = 4
_ELFCLASS64 = 2
_ELFDATA2LSB = 1


class KernelExtractError(RuntimeError):
    """The bzImage payload could not be turned into an ELF vmlinux."""


def bzimage_payload(data: bytes) -> bytes:
    """Return the compressed kernel payload embedded in a bzImage."""
    if data[_HDRS_OFFSET:_HDRS_OFFSET + 4] != b"HdrS":
        raise KernelExtractError("not a bzImage (no HdrS signature)")
    setup_sects = data[_SETUP_SECTS_OFFSET] or 4
    protected_mode_start = (setup_sects + 1) * 512
    offset, length = struct.unpack_from("<II", data, _PAYLOAD_OFFSET)
    start = protected_mode_start + offset
    return data[start:start + length]


def _decompress_zstd(payload: bytes) -> bytes:
    # The kernel appends a little-endian u32 size after the zstd frame; zstd(1)
    # rejects trailing bytes, so drop it.
    proc = run(["zstd", "-dc"], input_bytes=payload[:-4], capture=True)
    return proc.stdout


def decompress_payload(payload: bytes) -> bytes:
    """Decompress a kernel payload, choosing the codec from its magic bytes."""
    if payload.startswith(b"\x1f\x8b"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload)
    if payload.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(payload)
    if payload.startswith(b"\x28\xb5\x2f\xfd"):
        return _decompress_zstd(payload)
    if payload.startswith(b"BZh"):
        return bz2.BZ2Decompressor().decompress(payload)
    if payload.startswith(b"\x5d\x00\x00"):
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(payload)
    raise KernelExtractError(f"unknown kernel compression (magic {payload[:6].hex()})")


def has_pvh_note(elf: bytes) -> bool:
    """True if a 64-bit little-endian ELF carries XEN_ELFNOTE_PHYS32_ENTRY (PVH)."""
    if elf[:4] != b"\x7fELF" or elf[4] != _ELFCLASS64 or elf[5] != _ELFDATA2LSB:
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _flags, p_offset, _va, _pa, p_filesz = struct.unpack_from(
            "<IIQQQQ", elf, phoff + i * phentsize)
        if p_type == _PT_NOTE and _notes_have_pvh(elf[p_offset:p_offset + p_filesz]):
            return True
    return False


def _notes_have_pvh(notes: bytes) -> bool:
    pos = 0
    while pos + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
        name = notes[pos + 12:pos + 12 + namesz].rstrip(b"\x00")
        if name == b"Xen" and ntype == _XEN_ELFNOTE_PHYS32_ENTRY:
            return True
        pos += 12 + _align4(namesz) + _align4(descsz)
    return False


def _align4(n: int) -> int:
    return (n + 3) & ~3


def extract_vmlinux(bzimage: Path, dest: Path) -> bool:
    """Write the ELF vmlinux from bzimage to dest; return True if it is PVH-bootable."""
    try:
        elf = decompress_payload(bzimage_payload(bzimage.read_bytes()))
    except (lzma.LZMAError, zlib.error, OSError, subprocess.CalledProcessError) as exc:
        raise KernelExtractError(f"cannot decompress {bzimage}: {exc}") from exc
    if elf[:4] != b"\x7fELF":
        raise KernelExtractError(f"payload of {bzimage} is not an ELF image")
    dest.write_bytes(elf)
    return has_pvh_note(elf)
