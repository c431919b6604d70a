"""Text normalization of a documents table: Unicode NFC, no control characters, tidy whitespace.

After this step every text has lines separated by "\n", paragraphs by exactly one blank line,
single spaces inside lines and no leading or trailing whitespace, which is what the filters and
the deduplication hashes expect. All of it runs as pyarrow.compute kernels over the whole column.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

# Characters that never make a text non-NFC: assigned in Unicode 14, canonical combining class 0,
# NFC quick check Yes (UAX #15). A text made of them alone is already NFC, in every later Unicode
# version too (normalization stability policy), so only texts with some other character go
# through the normalizer, the slowest step here. The ranges cover Latin, Greek, Cyrillic, general
# punctuation and symbols, CJK, kana, Hangul syllables, fullwidth forms and emoji, minus their
# combining marks and singletons; tests/test_normalize.py checks each against unicodedata.
_NFC_SAFE = (
    (0x0000, 0x02FF), (0x0370, 0x0373), (0x0375, 0x0377), (0x037A, 0x037D), (0x037F, 0x037F),
    (0x0384, 0x0386), (0x0388, 0x038A), (0x038C, 0x038C), (0x038E, 0x03A1), (0x03A3, 0x0482),
    (0x0488, 0x052F), (0x1E00, 0x1EFF), (0x2002, 0x2064), (0x2066, 0x206F), (0x20A0, 0x20C0),
    (0x2100, 0x2125), (0x2127, 0x2129), (0x212C, 0x218B), (0x2190, 0x2328), (0x232B, 0x23FF),
    (0x2460, 0x27BF), (0x3000, 0x3029), (0x3030, 0x303F), (0x3041, 0x3096), (0x309B, 0x30FF),
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFE00, 0xFE0F), (0xFF01, 0xFFBE),
    (0xFFC2, 0xFFC7), (0xFFCA, 0xFFCF), (0xFFD2, 0xFFD7), (0xFFDA, 0xFFDC), (0xFFE0, 0xFFE6),
    (0xFFE8, 0xFFEE), (0x1F300, 0x1F64F), (0x1F680, 0x1F6D7), (0x1F6DD, 0x1F6EC),
    (0x1F6F0, 0x1F6FC), (0x1F900, 0x1F9FF),
)  # fmt: skip
_NEEDS_NFC = "[^" + "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in _NFC_SAFE) + "]"

# Line breaks other than "\n", and control characters (C0/C1 except tab and newline, and the
# byte-order mark): (pattern, replacement) in order. They are rare, so one scan picks the texts
# that have any before both rules run on those alone.
_LINE_BREAKS = r"\x{2028}\x{2029}\x{85}"
_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\x{feff}"
_RARE_RULES = [(rf"\r\n?|[{_LINE_BREAKS}]", "\n"), (f"[{_CONTROLS}]", "")]
# Then whitespace: tabs and Unicode spaces (NBSP, thin and ideographic spaces) become plain
# spaces so that word splitting and hashing see one kind of space, lines are trimmed, and blank
# lines between paragraphs come down to one. Each rule matches only what it changes (a run of
# spaces and tabs other than one plain space; a space beside a line break): every match costs,
# and most texts have a space between every two words.
_SPACE_RULES = [
    (r"[\t\p{Zs}]{2,}|[^ \P{Zs}]|\t", " "),
    (r" \n ?|\n ", "\n"),
    (r"\n{3,}", "\n\n"),
]


def normalize_text(docs: pa.Table) -> pa.Table:
    """Return `docs` with its `text` normalized (NFC, controls removed, whitespace tidied)."""
    texts = docs["text"]
    text = pa.chunked_array([_normalize(chunk) for chunk in texts.chunks], texts.type)
    return docs.set_column(docs.schema.get_field_index("text"), "text", text)


def _normalize(texts: pa.Array) -> pa.Array:
    """NFC, then the rules in order, then trimmed."""
    texts = _where_matching(texts, _NEEDS_NFC, lambda some: pc.utf8_normalize(some, "NFC"))
    texts = _where_matching(texts, rf"[\r{_LINE_BREAKS}{_CONTROLS}]", _apply_rare_rules)
    for pattern, replacement in _SPACE_RULES:
        texts = pc.replace_substring_regex(texts, pattern=pattern, replacement=replacement)
    return pc.utf8_trim_whitespace(texts)


def _apply_rare_rules(texts: pa.Array) -> pa.Array:
    """The line break and control character rules, in order."""
    for pattern, replacement in _RARE_RULES:
        texts = pc.replace_substring_regex(texts, pattern=pattern, replacement=replacement)
    return texts


def _where_matching(
    texts: pa.Array, pattern: str, transform: Callable[[pa.Array], pa.Array]
) -> pa.Array:
    """`texts` with `transform` applied to those that contain a match of `pattern` (the others
    being ones it would leave unchanged)."""
    hit = pc.fill_null(pc.match_substring_regex(texts, pattern), False)
    if not pc.any(hit).as_py():
        return texts
    return pc.replace_with_mask(texts, hit, transform(texts.filter(hit)))
