"""Line deduplication as CCNet does it: a line is known by the hash of its normalized text, and
lines that the lines stage (pipeline/lines.py) found in too many documents are dropped from every
document where the kept documents are read (pipeline/corpus.py).

Normalization follows CCNet's text_normalizer for hashing: stripped, lower-cased, every decimal
digit made "0" (so "© 2023" and "© 2024" are one line), whitespace collapsed; CCNet's accent and
punctuation folding are left out. Blank lines are never counted or dropped: they separate
paragraphs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core.checks import POSITIVE, Checked
from corpusmill.core.storage import Location
from corpusmill.pipeline.dedup.hashing import distinct_hashes
from corpusmill.pipeline.dedup.shuffle import read_table


@dataclass(frozen=True)
class LinesConfig(Checked):
    """Removal of lines repeated across documents: navigation, cookie notices, footers."""

    enabled: bool = field(
        default=False,
        metadata={"help": "remove lines found in more than lines.max_docs documents"},
    )
    max_docs: int = field(
        default=10,
        metadata={
            "help": "a line (normalized) in more than this many documents dedup kept is removed "
            "from all of them; CCNet keeps only the first",
            "checks": (POSITIVE,),
        },
    )
    bucket_rows: int = field(
        default=4_000_000,
        metadata={
            "help": "(line, document) pairs per counting task; about 20 bytes of memory each",
            "checks": (POSITIVE,),
        },
    )


# The blank lines at either end of a text.
_BLANK_ENDS = r"\A(?:[^\S\n]*\n)+|(?:\n[^\S\n]*)+\z"


class Dropped(NamedTuple):
    """Documents with their frequent lines removed, those left without text dropped, and what
    went: lines and text bytes, and the documents left without text and their bytes before."""

    table: pa.Table
    lines: int
    bytes: int
    emptied: int
    emptied_bytes: int


def split_lines(texts: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    """Each text's lines (split at "\\n"), as a list array of large strings."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.large_string())
    return pc.split_pattern(pc.fill_null(texts.cast(pa.large_string()), ""), "\n")


def line_hashes(lines: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(xxh3-64 of each normalized line, whether it is blank); a blank line's hash means nothing."""
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(lines.cast(pa.large_string())))
    normal = pc.replace_substring_regex(lowered, r"\p{Nd}", "0")
    normal = pc.binary_join(pc.utf8_split_whitespace(normal), pa.scalar(" ", pa.large_string()))
    blank = pc.equal(pc.binary_length(normal), 0).to_numpy(zero_copy_only=False)
    return distinct_hashes(normal), blank


def drop_lines(table: pa.Table, frequent: np.ndarray) -> Dropped:
    """`table`'s documents with every line whose hash is in sorted `frequent` removed (a changed
    text loses the blank lines left at its ends, not the indentation of its first line), and
    those left blank dropped."""
    if not len(frequent) or not table.num_rows:
        return Dropped(table, 0, 0, 0, 0)
    texts = table.column("text")
    lines = split_lines(texts)
    flat = lines.flatten()
    hashes, blank = line_hashes(flat)
    found = np.minimum(np.searchsorted(frequent, hashes), len(frequent) - 1)
    drop = (frequent[found] == hashes) & ~blank
    if not drop.any():
        return Dropped(table, 0, 0, 0, 0)
    docs = table.num_rows
    owner = pc.list_parent_indices(lines).to_numpy()
    changed = np.bincount(owner[drop], minlength=docs) > 0
    kept = np.bincount(owner[~drop], minlength=docs)
    offsets = np.concatenate([[0], np.cumsum(kept)])
    rejoined = pc.binary_join(
        pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), flat.filter(pa.array(~drop))),
        pa.scalar("\n", pa.large_string()),
    )
    trimmed = pc.replace_substring_regex(rejoined, _BLANK_ENDS, "")
    original = pc.fill_null(texts.combine_chunks().cast(pa.large_string()), "")
    new = pc.if_else(pa.array(changed), trimmed, original)
    left = ~changed | (np.bincount(owner[~drop & ~blank], minlength=docs) > 0)
    before = pc.binary_length(original).to_numpy(zero_copy_only=False)
    after = pc.binary_length(new).to_numpy(zero_copy_only=False)
    index = table.column_names.index("text")
    replaced = table.set_column(index, table.field(index), new.cast(texts.type))
    return Dropped(
        replaced.filter(pa.array(left)),
        int(drop.sum()),
        int(before.sum() - after[left].sum()),
        int((~left).sum()),
        int(before[~left].sum()),
    )


def read_frequent(path: Location) -> np.ndarray:
    """The sorted hashes of a run's frequent lines, from the lines stage's file."""
    return read_table(path).column("hash").to_numpy()
