"""Texts to the hashes deduplication compares: 128-bit keys of whole texts and word n-gram shingles.

Both work on whole string arrays; words are those of `corpusmill.pipeline.dedup.tokens`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from corpusmill.pipeline.dedup.tokens import split_words

# The 64-bit golden-ratio constant, an odd multiplier for the polynomial over an n-gram's words.
_NGRAM_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_MASK64 = (1 << 64) - 1


class Shingles(NamedTuple):
    """The shingle hashes of a batch of texts, text after text: text i owns `counts[i]` of them."""

    hashes: np.ndarray  # uint32
    counts: np.ndarray  # int64, one per text

    def doc_index(self) -> np.ndarray:
        """The text each hash belongs to."""
        return np.repeat(np.arange(len(self.counts)), self.counts)


def text_hashes(texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """xxh3-128 of each lowercased, whitespace-collapsed text, as (high, low) uint64 halves.

    Lowercasing is Unicode's (pyarrow's utf8_lower): case folding but for a few characters such as
    "ß", which stays as it is. Null texts hash as empty ones.
    """
    words = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(pc.utf8_lower(_large_strings(texts))))
    return _xxh3_128(pc.binary_join(words, pa.scalar(" ", pa.large_string())))


def url_hashes(urls: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xxh3-128 of each URL as it is, as (high, low, valid); a null or empty URL is not valid."""
    urls = _large_strings(urls)
    valid = pc.fill_null(pc.greater(pc.binary_length(urls), 0), False)
    high, low = _xxh3_128(urls)
    return high, low, valid.to_numpy(zero_copy_only=False)


def shingle_hashes(texts: pa.Array | pa.ChunkedArray, size: int) -> Shingles:
    """32-bit hashes of every run of `size` consecutive words of each text, in text order.

    A text of fewer words than `size` has one shingle, of all its words; a text without words has
    none. Words are hashed once per distinct word with xxh3-64 and combined into n-gram hashes with
    numpy, so no Python code runs per word or per shingle.
    Memory: about 40 bytes per word of the batch.
    """
    tokens = split_words(texts)
    offsets = tokens.offsets.to_numpy().astype(np.int64)
    lengths = np.diff(offsets)
    word_hashes = distinct_hashes(tokens.values.slice(offsets[0], offsets[-1] - offsets[0]))
    # Each text's words followed by size - 1 zeros: every n-gram is then a contiguous window, and
    # a short text's one shingle is its words padded with zeros.
    pad = size - 1
    padded = np.zeros(len(word_hashes) + pad * (len(lengths) + 1), np.uint64)
    padded[np.arange(len(word_hashes)) + np.repeat(np.arange(len(lengths)) * pad, lengths)] = (
        word_hashes
    )
    windows = len(padded) - pad
    acc = padded[:windows].copy()
    for j in range(1, size):
        acc *= _NGRAM_MULTIPLIER
        acc += padded[j : j + windows]
    counts = np.where(lengths >= size, lengths - pad, np.minimum(lengths, 1))
    # Per text, the first `counts` windows are its shingles and the other `size - 1` are not.
    runs = np.column_stack([counts, lengths + pad - counts]).ravel()
    starts = np.repeat(np.tile([True, False], len(lengths)), runs)
    hashes = fmix64(acc[starts]) >> np.uint64(32)
    return Shingles(hashes.astype(np.uint32), counts)


def shingle_sets(shingles: Shingles) -> pa.LargeListArray:
    """Each text's distinct shingle hashes, sorted: the sets whose Jaccard similarity counts."""
    doc = shingles.doc_index().astype(np.uint64)
    keys = np.unique((doc << np.uint64(32)) | shingles.hashes.astype(np.uint64))
    per_doc = np.bincount((keys >> np.uint64(32)).astype(np.int64), minlength=len(shingles.counts))
    offsets = np.concatenate([[0], np.cumsum(per_doc)]).astype(np.int64)
    values = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values))


def fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: any input bit flips each output bit with probability ~1/2."""
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xFF51AFD7ED558CCD)
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xC4CEB9FE1A85EC53)
    return values ^ (values >> np.uint64(33))


def distinct_hashes(words: pa.Array) -> np.ndarray:
    """xxh3-64 of each word, computed once per distinct word of the batch."""
    encoded = pc.dictionary_encode(words)
    distinct = np.fromiter(
        map(xxhash.xxh3_64_intdigest, _bytes_of(encoded.dictionary)),
        dtype=np.uint64,
        count=len(encoded.dictionary),
    )
    return distinct[encoded.indices.to_numpy(zero_copy_only=False)]


def _xxh3_128(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """xxh3-128 of each string's UTF-8 bytes, as (high, low) uint64 halves."""
    digests = list(map(xxhash.xxh3_128_intdigest, _bytes_of(strings)))
    high = np.fromiter((d >> 64 for d in digests), dtype=np.uint64, count=len(digests))
    low = np.fromiter((d & _MASK64 for d in digests), dtype=np.uint64, count=len(digests))
    return high, low


def _bytes_of(strings: pa.Array) -> list[bytes]:
    """The UTF-8 bytes of each string of an array without nulls: three times faster to hash one by
    one than memoryview slices of the array's buffer, whose creation costs more than the hashing."""
    return strings.cast(pa.large_binary()).to_pylist()


def _large_strings(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous large_string array, nulls as empty strings."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.large_string())
    return pc.fill_null(texts.cast(pa.large_string()), "")
