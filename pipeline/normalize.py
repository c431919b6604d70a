"""Text normalization of a documents table: Unicode NFC, no control characters, tidy whitespace.

After this step every text has lines separated by "\n", paragraphs by exactly one blank line,
single spaces inside lines and no leading or trailing whitespace, which is what the filters and
the deduplication hashes expect. All of it runs as pyarrow.compute kernels over the whole column.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

# (pattern, replacement) in order. Control characters are C0/C1 except tab and newline, plus
# the byte-order mark; tabs and Unicode spaces (NBSP, thin and ideographic spaces) become plain
# spaces so that word splitting and hashing see one kind of space.
_RULES = [
    (r"\r\n?|[\x{2028}\x{2029}\x{85}]", "\n"),
    (r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\x{feff}]", ""),
    (r"[\t\p{Zs}]+", " "),
    (r" ?\n ?", "\n"),
    (r"\n{3,}", "\n\n"),
]


def normalize_text(docs: pa.Table) -> pa.Table:
    """Return `docs` with its `text` normalized (NFC, controls removed, whitespace tidied)."""
    text = pc.utf8_normalize(docs["text"], "NFC")
    for pattern, replacement in _RULES:
        text = pc.replace_substring_regex(text, pattern=pattern, replacement=replacement)
    text = pc.utf8_trim_whitespace(text)
    return docs.set_column(docs.schema.get_field_index("text"), "text", text)
