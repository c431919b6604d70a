"""Bytes in: opening inputs, tolerant decompression, telling text from binary data.

Every reader works on a `ByteReader`: a forward reader that knows its position, can peek and search
ahead by a bounded amount, and never raises on bad data. A truncated or corrupt gzip/zstd stream
simply ends where the damage starts, and its `problem` says what happened, so the reader can reject
the record that was cut and keep everything before it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import fsspec
import zstandard

# zlib-ng inflates the same bytes as zlib, with the same errors, in half the CPU time (gzip is a
# tenth of the clean stage's on a crawl of HTML pages).
from zlib_ng import zlib_ng

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
RAW_CHUNK = 1 << 20
# Decompressed bytes per step. zlib caps its output with max_length; zstd cannot, so its input is
# fed a frame header or a block at a time: a block decompresses to at most 128 KiB (RFC 8878), and
# a corrupt block costs only its own output, not that of the blocks fed with it.
_MAX_OUT = 1 << 20
_GZIP_FEED = 1 << 16
_ZSTD_MAX_BLOCK = 1 << 17
# Enough to tell a member/frame start (a zstd skippable frame's size field ends at byte 8).
_MEMBER_PROBE = 8
# A sample this long is enough to tell text from binary; it is what `file` and browsers look at.
SNIFF_BYTES = 8192
# C0 control characters that never appear in text (tab, newlines, form feed and escape do).
_CONTROL = bytes(set(range(32)) - {9, 10, 11, 12, 13, 27}) + b"\x7f"
_BINARY_MAGIC = (
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"%PDF",
    b"PK\x03\x04",
    b"RIFF",
    b"\x00\x00\x01\x00",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"\x7fELF",
    b"OggS",
    b"ID3",
    b"fLaC",
    b"wOFF",
    b"wOF2",
    b"\x1a\x45\xdf\xa3",
    b"7z\xbc\xaf",
    b"Rar!",
    GZIP_MAGIC,
    ZSTD_MAGIC,
    b"\xd0\xcf\x11\xe0",
    b"\x00asm",
)
_TEXT_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True)
class Problem:
    """Why a byte stream ended early: `reason` is a rejection reason, `offset` a raw file offset.

    `trailing` is set when the problem is bytes after complete compressed data: everything before
    them was read and checked whole.
    """

    reason: str
    offset: int
    detail: str
    trailing: bool = False


@contextlib.contextmanager
def open_raw(url: str, options: Mapping[str, Any] | None = None) -> Iterator[BinaryIO]:
    """Open a local path or fsspec URL for binary reading, with the fsspec storage `options`."""
    with fsspec.open(url, mode="rb", **(options or {})) as handle:
        yield handle


def raw_reader(handle: BinaryIO, start: int = 0) -> ByteReader:
    """A `ByteReader` over a file's stored bytes from `start`."""
    handle.seek(start)
    return ByteReader(_RawSource(handle), start)


def decoded_reader(raw: ByteReader, compression: str) -> ByteReader:
    """A `ByteReader` over the decompressed content that starts at `raw`'s position."""
    if compression == "none":
        return raw
    return ByteReader(DecompressSource(raw, compression))


def binary_magic(head: bytes) -> bool:
    """True if bytes start with the signature of an image, archive, document or executable."""
    return head.startswith(_BINARY_MAGIC)


def looks_binary(head: bytes) -> bool:
    """True if a file or payload starts like binary data rather than text in any encoding."""
    sample = head[:SNIFF_BYTES]
    if not sample or sample.startswith(_TEXT_BOMS):
        return False
    if binary_magic(sample) or b"\x00" in sample:
        return True
    # Random bytes are ~10% such controls; text in any 8-bit or UTF-8 encoding has almost none.
    controls = len(sample) - len(sample.translate(None, _CONTROL))
    return controls > 0.05 * len(sample)


def _is_skippable_frame(head: bytes) -> bool:
    """A zstd skippable frame (metadata such as a seek table): magic 0x184D2A5?, then its size."""
    return len(head) >= 8 and head[1:4] == b"\x2a\x4d\x18" and head[0] & 0xF0 == 0x50


class ByteReader:
    """A forward reader with a position, bounded peeking and searching; it never raises on bad data.

    Memory is what callers peek or search plus one chunk; `skip` and `drain` hold nothing.
    """

    def __init__(self, source: Any, pos: int = 0) -> None:
        self.source = source
        self.pos = pos
        self._buf = b""
        self._off = 0

    @property
    def problem(self) -> Problem | None:
        """Why the stream ended early, or None if it ended cleanly (or has not ended)."""
        return self.source.problem

    def peek(self, n: int, offset: int = 0) -> bytes:
        """Up to `n` bytes from `offset` bytes ahead, fewer only at the end of the stream."""
        self._fill(offset + n)
        start = self._off + offset
        return self._buf[start : start + n]

    def read(self, n: int) -> bytes:
        """Consume and return up to `n` bytes."""
        data = self.peek(n)
        self._off += len(data)
        self.pos += len(data)
        return data

    def skip(self, n: int) -> int:
        """Consume up to `n` bytes without keeping them; return how many there were."""
        done = 0
        while done < n:
            available = self._fill(1)
            if not available:
                break
            step = min(available, n - done)
            self._off += step
            self.pos += step
            done += step
        return done

    def find(self, needle: bytes, within: int) -> int:
        """Where `needle` starts in the next `within` bytes, relative to the position, or -1."""
        self._fill(within)
        found = self._buf.find(needle, self._off, self._off + within)
        return found - self._off if found >= 0 else -1

    def skip_past(self, needle: bytes) -> bool:
        """Consume up to and including the next `needle` (or to the end); True if it was found."""
        while True:
            available = self._fill(RAW_CHUNK)
            if not available:
                return False
            found = self._buf.find(needle, self._off)
            if found >= 0:
                step = found + len(needle) - self._off
                self._off += step
                self.pos += step
                return True
            # Keep the last bytes: the needle may straddle two chunks.
            self.skip(max(available - len(needle) + 1, 1))

    def drain(self) -> int:
        """Consume everything left, without holding it; return how many bytes that was."""
        done = 0
        while available := self._fill(1):
            self._off += available
            self.pos += available
            done += available
        return done

    def at_end(self) -> bool:
        """True when no byte is left."""
        return not self._fill(1)

    def _fill(self, n: int) -> int:
        """Buffer at least `n` bytes unless the stream ends first; return how many are buffered."""
        available = len(self._buf) - self._off
        if available >= n:
            return available
        parts = [self._buf[self._off :]]
        while available < n:
            chunk = self.source.read_chunk()
            if not chunk:
                break
            parts.append(chunk)
            available += len(chunk)
        self._buf = b"".join(parts)
        self._off = 0
        return available


class _RawSource:
    """Stored bytes of an open file, in chunks."""

    problem = None

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    def read_chunk(self) -> bytes:
        return self.handle.read(RAW_CHUNK)


class DecompressSource:
    """Decompressed chunks of the gzip members or zstd frames starting at `raw`'s position.

    It stops at the end of the stored bytes, at bytes that are not another member/frame (garbage),
    or at corrupt data, setting `problem` in the last two cases and when the stream was cut short.
    With `single_member`, it stops after one gzip member, leaving `raw` right after it.
    """

    def __init__(self, raw: ByteReader, compression: str, single_member: bool = False) -> None:
        self.raw = raw
        self.compression = compression
        self.single_member = single_member
        self.problem: Problem | None = None
        self.members = 0
        self._member_start = raw.pos
        self._decompressor: Any = None
        self._done = False
        # zstd: whether the frame header is fed yet, and whether its last block is.
        self._frame_parts = ZstdParts()

    def read_chunk(self) -> bytes:
        while not self._done:
            out = self._step()
            if out:
                return out
        return b""

    def _step(self) -> bytes:
        """Feed one piece of compressed input; return what it decompressed to (maybe nothing)."""
        if self._decompressor is None:
            return self._start_member(self.raw.peek(_MEMBER_PROBE))
        gzip = self.compression == "gzip"
        feed = self.raw.peek(_GZIP_FEED if gzip else self._frame_parts.next(self.raw))
        if not feed:
            where = f"the {self.compression} member starting at stored byte {self._member_start}"
            self._stop("truncated", self._member_start, f"the file ends inside {where}")
            return b""
        before = self._decompressor.copy() if gzip else None
        try:
            out = (
                self._decompressor.decompress(feed, _MAX_OUT)
                if gzip
                else self._decompressor.decompress(feed)
            )
        except (zlib_ng.error, zstandard.ZstdError) as exc:
            # zlib raises without what the bytes before the damage decompress to: get it again.
            out = _before_damage(before, feed) if gzip else b""
            detail = f"corrupt {self.compression} data at stored byte {self.raw.pos} ({exc})"
            self._stop("corrupt", self.raw.pos, detail)
            return out
        self.raw.skip(len(feed) - len(self._unconsumed()))
        if self._decompressor.eof:
            self.members += 1
            self._decompressor = None
            self._done = self.single_member
        return out

    def _unconsumed(self) -> bytes:
        """The fed bytes the decompressor did not use: what follows its member/frame once it
        ended, else what its output limit left over. (At the end of a gzip member whose last
        step hit the limit, zlib (and zlib-ng) reports the bytes after it in both attributes.)
        """
        if self._decompressor.eof:
            return self._decompressor.unused_data
        return self._decompressor.unconsumed_tail

    def _start_member(self, feed: bytes) -> bytes:
        """Begin the next member/frame at the current position, or stop at the end or at garbage."""
        if not feed:
            self._done = True
        elif self.compression == "zstd" and _is_skippable_frame(feed):
            self.raw.skip(8 + int.from_bytes(feed[4:8], "little"))
        elif not feed.startswith(GZIP_MAGIC if self.compression == "gzip" else ZSTD_MAGIC):
            what = "garbage after the compressed data" if self.members else "not compressed data"
            detail = f"{what} at stored byte {self.raw.pos} (expected {self.compression})"
            self._stop("corrupt", self.raw.pos, detail, trailing=self.members > 0)
        else:
            self._member_start = self.raw.pos
            self._frame_parts = ZstdParts()
            self._decompressor = (
                zlib_ng.decompressobj(31)
                if self.compression == "gzip"
                else zstandard.ZstdDecompressor().decompressobj()
            )
        return b""

    def _stop(self, reason: str, offset: int, detail: str, trailing: bool = False) -> None:
        self.problem = Problem(reason, offset, detail, trailing)
        self._done = True


def _before_damage(decompressor: Any, feed: bytes) -> bytes:
    """What the longest start of `feed` that a copy of `decompressor` takes without an error
    decompresses to, found by halving."""
    out, good, bad = b"", 0, len(feed)
    while bad - good > 1:
        middle = (good + bad) // 2
        try:
            attempt = decompressor.copy().decompress(feed[:middle], _MAX_OUT)
        except zlib_ng.error:
            bad = middle
        else:
            out, good = attempt, middle
    return out


class ZstdParts:
    """Where the parts of a zstd frame (RFC 8878) end: its header, each block, its checksum."""

    def __init__(self) -> None:
        self.header_fed = False
        self.checksum = False
        self.last_block_fed = False

    def next(self, raw: ByteReader) -> int:
        """The length of the frame part at `raw`'s position (what is there, if it is cut or
        damaged: the decompressor then says what is wrong)."""
        if not self.header_fed:
            head = raw.peek(_MEMBER_PROBE)
            self.header_fed = True
            if len(head) < 5:
                return len(head)
            descriptor = head[4]
            self.checksum = bool(descriptor & 4)
            single_segment = bool(descriptor & 32)
            content_size = (int(single_segment), 2, 4, 8)[descriptor >> 6]
            return 5 + (not single_segment) + (0, 1, 2, 4)[descriptor & 3] + content_size
        if self.last_block_fed:
            return 4 if self.checksum else 1
        head = raw.peek(3)
        if len(head) < 3:
            return len(head)
        value = int.from_bytes(head, "little")
        self.last_block_fed = bool(value & 1)
        kind, size = (value >> 1) & 3, value >> 3
        if kind == 1:  # RLE: one byte repeated `size` times
            return 4
        return 3 + size if kind != 3 and size <= _ZSTD_MAX_BLOCK else 3
