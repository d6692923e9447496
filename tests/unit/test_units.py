import pytest

from direct_lvm.units import (
    GIB,
    MAX_METADATA,
    MIB,
    auto_metadata_size,
    chunk_size_problem,
    dm_name,
    format_size,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "n"), [("512K", 512 * 1024), ("1G", GIB), ("1.5G", 3 * GIB // 2), ("64k", 65536)]
)
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["512", "K", "1 G", "-1G", "1GB", ""])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_format_size_round_trip():
    for text in ("512K", "64M", "2G", "1T"):
        assert format_size(parse_size(text)) == text


def test_dm_name_doubles_hyphens_like_lvm():
    assert dm_name("docker", "thinpool") == "docker-thinpool"
    assert dm_name("my-vg", "thin-pool") == "my--vg-thin--pool"


def test_auto_metadata_small_pool_is_clamped_to_lvm_minimum_then_extents():
    # 1000 thin roots alone are ~3.9 MiB, so even a tiny pool gets one 4 MiB extent or two
    size = auto_metadata_size(100 * MIB, 512 * 1024, 4 * MIB)
    assert size == 4 * MIB


def test_auto_metadata_grows_with_pool_and_shrinks_with_chunk():
    big = auto_metadata_size(10 * 1024 * GIB, 64 * 1024, 4 * MIB)
    small = auto_metadata_size(10 * 1024 * GIB, 1024 * 1024, 4 * MIB)
    assert big > small
    # thin_metadata_size: ceil(blocks/126) leaves + 1000 roots, 4 KiB each
    blocks = 10 * 1024 * GIB // (64 * 1024)
    expect = (-(-blocks // 126) + 1000) * 4096
    assert big == -(-expect // (4 * MIB)) * 4 * MIB


def test_auto_metadata_clamped_to_lvm_maximum():
    assert auto_metadata_size(1 << 60, 64 * 1024, 4 * MIB) <= MAX_METADATA


@pytest.mark.parametrize(
    ("chunk", "ok"),
    [(64 * 1024, True), (512 * 1024, True), (192 * 1024, True), (GIB, True),
     (32 * 1024, False), (100 * 1024, False), (2 * GIB, False)],
)  # fmt: skip
def test_chunk_size_rules(chunk, ok):
    assert (chunk_size_problem(chunk) is None) is ok
