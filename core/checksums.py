"""The checksum a run records of the files it writes and reads back: xxh3-64, fast enough to
check every shard and tokenizer file on each read."""

from __future__ import annotations

from pathlib import Path

import xxhash

# Bytes read at a time, so that a checksum holds no more than this of a large file in memory.
_READ_CHUNK = 1 << 24


def file_checksum(path: Path) -> str:
    """xxh3-64 of a file's bytes, as 16 hex digits."""
    digest = xxhash.xxh3_64()
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
