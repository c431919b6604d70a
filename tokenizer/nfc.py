"""Unicode NFC exactly as HF tokenizers computes it, at the speed of Python's `unicodedata`.

tiktoken does not normalize, so the fast encoder applies the tokenizer's NFC itself. HF tokenizers'
NFC (about 60 MB/s) would add half to tiktoken's time; Python's (over 1 GB/s) is built on a
different Unicode version. By Unicode's normalization stability policy, a character assigned in
both versions normalizes identically in both, so the versions can only disagree on texts holding a
character that is unassigned in Python's tables, or assigned after Unicode 3.2 (older than any
version either library uses) and not inert under NFC. Texts with such a character, rare on the
web, are normalized by the tokenizer's own normalizer; all others by `unicodedata`.

Finding those characters scans every code point (about 0.2 s), so a process that has the class
hands it on to the processes it sends an encoder to (`version_dependent_class`, `adopt_class`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc


def normalize_nfc(texts: pa.Array | pa.ChunkedArray, exact: Callable[[str], str]) -> list[str]:
    """NFC of each text: with `exact` (the tokenizer's normalizer) where Unicode versions may
    disagree, with `unicodedata` elsewhere."""
    _, unstable_class = version_dependent_class()
    unstable = pc.match_substring_regex(texts, unstable_class).to_pylist()
    return [
        exact(text) if flag else unicodedata.normalize("NFC", text)
        for text, flag in zip(texts.to_pylist(), unstable, strict=True)
    ]


# The class of each Unicode version seen: this process's own, computed or adopted.
_CLASSES: dict[str, str] = {}


def version_dependent_class() -> tuple[str, str]:
    """This process's Unicode version and an RE2 character class of the code points whose NFC
    may depend on the Unicode version, computed once per process unless adopted."""
    version = unicodedata.unidata_version
    if version not in _CLASSES:
        _CLASSES[version] = _scan_code_points()
    return version, _CLASSES[version]


def adopt_class(version: str, unstable_class: str) -> None:
    """Take the class another process computed, if its Unicode version is this process's."""
    if version == unicodedata.unidata_version:
        _CLASSES.setdefault(version, unstable_class)


def _scan_code_points() -> str:
    """The class of version_dependent_class, from every code point's Unicode properties."""
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
