"""General-purpose compressors: gzip -9, zstd -3 and -19, and zstd -19 with a dictionary trained
on other documents of the same corpus.

Each is measured two ways: every document compressed on its own (as a store of small records
would, where a dictionary matters most) and all documents as one stream (where repeats across
documents are found).
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import zstandard

log = logging.getLogger(__name__)

# The zstd dictionary trainer works on samples of a few KB; longer documents are cut into pieces
# of this size so that a few long pages do not make up the whole training set.
_SAMPLE_BYTES = 4096


def compressed_sizes(
    texts: Sequence[bytes], dictionary: zstandard.ZstdCompressionDict | None = None
) -> dict[str, dict[str, int]]:
    """Per method, the compressed bytes of `texts` one by one ("documents") and concatenated
    ("stream"); the dictionary method only when a dictionary is given."""
    methods = _methods(dictionary)
    stream = b"".join(texts)
    return {
        name: {"documents": sum(size(text) for text in texts), "stream": size(stream)}
        for name, size in methods.items()
    }


def document_sizes(texts: Sequence[bytes]) -> dict[str, np.ndarray]:
    """Each text's bytes ("bytes") and its compressed bytes by each method, compressed alone."""
    sizes = {"bytes": np.array([len(text) for text in texts], dtype=np.int64)}
    for name, size in _methods().items():
        sizes[name] = np.array([size(text) for text in texts], dtype=np.int64)
    return sizes


class StreamSizes:
    """Compressed bytes of a stream fed piece by piece by gzip -9, zstd -3 and zstd -19, the
    compressors applied to each document alone."""

    def __init__(self) -> None:
        self.compressors = {
            "gzip -9": zlib.compressobj(9, zlib.DEFLATED, 31),
            "zstd -3": zstandard.ZstdCompressor(level=3).compressobj(),
            "zstd -19": zstandard.ZstdCompressor(level=19).compressobj(),
        }
        self.counts = dict.fromkeys(self.compressors, 0)

    def add(self, texts: Iterable[bytes]) -> None:
        """Feed `texts` to every compressor, in order."""
        for text in texts:
            for name, compressor in self.compressors.items():
                self.counts[name] += len(compressor.compress(text))

    def sizes(self) -> dict[str, int]:
        """The stream's compressed sizes; the stream ends here."""
        return {
            name: self.counts[name] + len(compressor.flush())
            for name, compressor in self.compressors.items()
        }


def train_dictionary(texts: Sequence[bytes], size: int) -> zstandard.ZstdCompressionDict | None:
    """A zstd dictionary of `size` bytes trained on `texts`; None (logged) if they are too few."""
    samples = [
        text[start : start + _SAMPLE_BYTES]
        for text in texts
        for start in range(0, len(text), _SAMPLE_BYTES)
    ]
    try:
        return zstandard.train_dictionary(size, samples)
    except zstandard.ZstdError as exc:
        log.warning(
            "no zstd dictionary: %d samples of training text are too few (%s); the report "
            "leaves the dictionary method out",
            len(samples),
            exc,
        )
        return None


def _methods(dictionary: zstandard.ZstdCompressionDict | None = None) -> dict[str, Any]:
    """A function giving the compressed size of bytes per method: gzip -9, zstd -3 and -19, and
    zstd -19 with `dictionary` when one is given."""
    methods = {
        "gzip -9": lambda data: len(gzip.compress(data, compresslevel=9, mtime=0)),
        "zstd -3": _zstd(3),
        "zstd -19": _zstd(19),
    }
    if dictionary is not None:
        methods["zstd -19 + dictionary"] = _zstd(19, dictionary)
    return methods


def _zstd(level: int, dictionary: zstandard.ZstdCompressionDict | None = None):
    """A function giving the zstd-compressed size of bytes at `level`."""
    compressor = zstandard.ZstdCompressor(level=level, dict_data=dictionary)
    return lambda data: len(compressor.compress(data))
