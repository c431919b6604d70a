"""Unicode NFC exactly as HF tokenizers computes it, at the speed of Python's `unicodedata`.

tiktoken does not normalize, so the fast encoder applies the tokenizer's NFC itself. HF tokenizers'
NFC (about 60 MB/s) would add half to tiktoken's time; Python's (over 1 GB/s) is built on a
different Unicode version. By Unicode's normalization stability policy, a character assigned in
both versions normalizes identically in both, so the versions can only disagree on texts holding a
character that is unassigned in Python's tables, or assigned after Unicode 3.2 (older than any
version either library uses) and not inert under NFC. Texts with such a character, rare on the
web, are normalized by the tokenizer's own normalizer; all others by `unicodedata`.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc


def normalize_nfc(texts: pa.Array | pa.ChunkedArray, exact: Callable[[str], str]) -> list[str]:
    """NFC of each text: with `exact` (the tokenizer's normalizer) where Unicode versions may
    disagree, with `unicodedata` elsewhere."""
    unstable = pc.match_substring_regex(texts, _version_dependent_class()).to_pylist()
    return [
        exact(text) if flag else unicodedata.normalize("NFC", text)
        for text, flag in zip(texts.to_pylist(), unstable)
    ]


@functools.cache
def _version_dependent_class() -> str:
    """An RE2 character class of the code points whose NFC may depend on the Unicode version."""
    old = unicodedata.ucd_3_2_0
    composed_from = {
        int(code, 16)
        for char in map(chr, range(0x110000))
        if (mapping := unicodedata.decomposition(char)) and not mapping.startswith("<")
        for code in mapping.split()
    }
    ranges: list[list[int]] = []
    for code in range(0x110000):
        if 0xD800 <= code < 0xE000:
            continue  # surrogates never occur in valid UTF-8
        char = chr(code)
        if unicodedata.category(char) == "Cn" or (
            old.category(char) == "Cn"
            and (
                unicodedata.combining(char)
                or unicodedata.decomposition(char)
                or code in composed_from
            )
        ):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return "[" + "".join(f"\\x{{{low:x}}}-\\x{{{high:x}}}" for low, high in ranges) + "]"
