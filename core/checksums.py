"""The checksum a run records of the files it writes and reads back: xxh3-64, fast enough to
check every shard and tokenizer file on each read."""

from __future__ import annotations

import os

import xxhash

from corpusmill.core.storage import Location, location

# Bytes read at a time, so that a checksum holds no more than this of a large file in memory.
_READ_CHUNK = 1 << 24


def file_checksum(path: str | os.PathLike[str] | Location) -> str:
    """xxh3-64 of a file's bytes, local or an object's (core/storage.py), as 16 hex digits."""
    digest = xxhash.xxh3_64()
    with location(path).open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
