"""What a quality filter returns, how filters run in sequence, and what they share: an immutable
view of the texts' lines and words (Splits), split once per batch, and the line helpers.

A filter looks at a whole table of documents at once and answers, per row, keep or not and, if
not, the first rule the document failed, so counts per reason add up to the rows removed. A
built-in family does it in two steps: `measure` computes its statistics of every document (its
signals, kept for every document in OUT/signals/), and `decide` compares them with its thresholds,
a pure function of the signals and the config, so that new thresholds can be applied to the
stored signals without reading the inputs again (pipeline/refilter.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import zstandard

from corpusmill.pipeline.words import Words, split_line_words, split_words

log = logging.getLogger(__name__)

ConfigT = TypeVar("ConfigT")

# The marks that end a sentence in every script: the Latin . ! ?, and the full stops and question
# and exclamation marks of scripts that do not use them (CJK full and half width, Arabic and Urdu,
# Devanagari, Ethiopic, Armenian, Myanmar, Khmer). The Latin marks also end abbreviations and
# numbers, so they end a sentence only where a space or the end of the text follows (see
# sentence_counts); the others end one wherever they stand.
LATIN_SENTENCE_STOPS = ".!?"
SENTENCE_STOPS = "。！？｡؟۔।॥።፧։။។"
# Closing quotes and brackets that may follow a sentence's last mark.
_CLOSERS = "\"'”’»」』)]"
# Marks a line ends with when it ends a sentence: C4's set (. ! ? " ') with closing quotes, and
# every script's stops, so prose in other scripts is not taken for lines without punctuation.
TERMINAL_PUNCTUATION = LATIN_SENTENCE_STOPS + SENTENCE_STOPS + "\"'”’»」』"
_ENDS_WITH_TERMINAL = f"[{re.escape(TERMINAL_PUNCTUATION)}]$"
_SENTENCE_END = (
    f"[{re.escape(LATIN_SENTENCE_STOPS)}]+[{re.escape(_CLOSERS)}]*(?:\\s|$)"
    f"|[{re.escape(SENTENCE_STOPS)}]+"
)
# Periods that end no sentence, removed before counting: the period after a section number that
# begins a line, alone or after one word ("54. Views", "Chapter 54. System Views", "3.2. Setup");
# of a title or Latin abbreviation ("Dr.", "e.g."); and of an initial, a capital letter after a
# capitalized word or another initial ("John F. Kennedy", "George R. R. Martin"), not after a
# lowercase word, as a type parameter ends a sentence in code docs ("of type T."). A number
# ending a sentence of more words ("It opened in 1954.") still counts.
_NOT_A_SENTENCE_END = (
    r"(?m)(^(?:\p{L}+[ \t]+)?\d+(?:\.\d+)*"
    r"|(?:^|[\s(\"'“‘«])(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|vs|cf|e\.g|i\.e)"
    r"|(?:\p{Lu}\p{Ll}+|\p{Lu}\.?)[ \t]+\p{Lu})\."
)


@dataclass(frozen=True)
class FilterResult:
    """Per row of the input: keep or not, and why not ("<filter>:<rule>", null where kept).

    `edited`, when set, is the view of new texts, one per input row, that replace the kept rows'
    texts: a filter that removes lines (C4) returns them alongside its verdict.
    """

    keep: np.ndarray
    reason: pa.Array
    edited: Splits | None = None
    # A built-in family's signals of each row, {name: values}, which its verdict was decided from.
    signals: dict[str, Any] | None = None


class Filter(Protocol):
    """A quality filter: a name (the prefix of its reasons) and a verdict on a table of docs.

    `splits` is the view of the table's texts that apply_filters shares between the filters of
    a batch; without it, a filter makes its own view.
    """

    name: str

    def __call__(self, docs: pa.Table, splits: Splits | None = None) -> FilterResult: ...


def apply_filters(docs: pa.Table, filters: Sequence[Filter]) -> tuple[pa.Table, pa.Table]:
    """Run `filters` in order, each on the rows the previous ones kept.

    Returns the kept rows and the removed rows with a `reason` column holding the first rule each
    failed; removed rows keep the text they had when they were removed.
    """
    removed_schema = docs.schema.append(pa.field("reason", pa.string(), nullable=False))
    removed = [removed_schema.empty_table()]
    splits = Splits.of(docs.column("text"))
    for filt in filters:
        if docs.num_rows == 0:
            break
        result = filt(docs, splits=splits)
        keep = pa.array(result.keep, pa.bool_())
        drop = pc.invert(keep)
        rejected = docs.filter(drop).append_column(
            removed_schema.field("reason"), result.reason.filter(drop)
        )
        removed.append(rejected)
        log.debug("%s removed %d of %d documents", filt.name, rejected.num_rows, docs.num_rows)
        docs = docs.filter(keep)
        if result.edited is not None:
            text_index = docs.schema.get_field_index("text")
            edited = result.edited.texts.filter(keep).cast(docs.schema.field("text").type)
            docs = docs.set_column(text_index, docs.schema.field("text"), edited)
            splits = result.edited
        splits = splits.filter(result.keep)
    return docs, pa.concat_tables(removed)


@dataclass(frozen=True)
class Measures:
    """A family's signals, {name: one value per row}, and the view of the texts it edited (None
    for a family that does not edit)."""

    signals: dict[str, Any]
    edited: Splits | None = None


class RuleFamily(Generic[ConfigT]):
    """A built-in filter: a family of rules with its config, whose `measure` computes its signals
    of a batch from its documents and the view of their texts, and whose `decide` turns them
    into verdicts."""

    name: ClassVar[str]
    # The statistics its rules compare with thresholds, one value per document.
    signal_fields: ClassVar[tuple[pa.Field, ...]]
    # The keys of its config that change its signals or its edits, not only its verdicts: a run
    # changing any of them cannot be re-decided from stored signals. `enabled` always does.
    signal_keys: ClassVar[frozenset[str]] = frozenset()
    # Whether it edits texts, so that the families after it measure the edited ones.
    edits: ClassVar[bool] = False

    def __init__(self, config: ConfigT):
        self.config = config

    def __call__(self, docs: pa.Table, splits: Splits | None = None) -> FilterResult:
        """Judge `docs` with the view apply_filters gave, else with a view of their texts made
        here."""
        measures = self.measure(docs, Splits.of(docs.column("text")) if splits is None else splits)
        verdict = self.decide(measures.signals)
        return dataclasses.replace(verdict, edited=measures.edited, signals=measures.signals)

    def measure(self, docs: pa.Table, splits: Splits) -> Measures:
        """Each document's signals (the fields of `signal_fields`)."""
        raise NotImplementedError

    def decide(self, signals: Mapping[str, Any]) -> FilterResult:
        """Each document's verdict, from its signals and the thresholds of the config alone."""
        raise NotImplementedError


# Statistics of every document as it reached the filters, whichever filters run: its characters,
# non-empty lines and words, and its UTF-8 bytes over their zstd-compressed bytes (level 3), high
# for repetitive text (RedPajama-V2 keeps the same statistics among its quality signals).
DOCUMENT_SIGNALS = (
    pa.field("chars", pa.int64(), nullable=False),
    pa.field("lines", pa.int64(), nullable=False),
    pa.field("words", pa.int64(), nullable=False),
    pa.field("compression_ratio", pa.float64(), nullable=False),
)
_COMPRESSION_LEVEL = 3


@dataclass(frozen=True)
class Decision:
    """The built-in families' verdicts on a batch: keep or not, the first rule failed, and
    whether the family that removed the row saw the text an earlier family edited."""

    keep: np.ndarray
    reason: pa.Array
    saw_edited: np.ndarray


def signals_type(families: Sequence[RuleFamily]) -> pa.StructType:
    """The type of the `signals` column: a struct of the document's statistics and one of each
    family's signals, named as the family."""
    groups = [("document", DOCUMENT_SIGNALS)] + [(f.name, f.signal_fields) for f in families]
    return pa.struct([pa.field(name, pa.struct(list(fields)), False) for name, fields in groups])


def judge_families(
    docs: pa.Table,
    families: Sequence[RuleFamily],
    step: Callable[[str], AbstractContextManager] = lambda _: contextlib.nullcontext(),
) -> tuple[Decision, pa.StructArray, pa.Array]:
    """The families' verdicts on every row, their signals (of signals_type) and the texts as the
    editing families left them.

    Every family measures every row, not only those the families before it keep, so that any
    thresholds can be decided from the signals later (decide_filters gives the same verdicts);
    a family after an editing one measures the edited texts. `step(name)` wraps each family's
    work (to name it in failures).
    """
    splits = Splits.of(docs.column("text"))
    groups = [_struct(document_signals(splits), DOCUMENT_SIGNALS)]
    verdicts = []
    for family in families:
        with step(family.name):
            result = family(docs, splits=splits)
        groups.append(_struct(result.signals or {}, family.signal_fields))
        verdicts.append(result)
        if result.edited is not None:
            splits = result.edited
    signals = pa.StructArray.from_arrays(groups, fields=list(signals_type(families)))
    return _first_removals(families, verdicts, docs.num_rows), signals, splits.texts


def decide_filters(signals: pa.StructArray, families: Sequence[RuleFamily]) -> Decision:
    """The families' verdicts from the signals judge_families stored, with their thresholds."""
    verdicts = [family.decide(signal_values(signals.field(family.name))) for family in families]
    return _first_removals(families, verdicts, len(signals))


def _first_removals(
    families: Sequence[RuleFamily], verdicts: Sequence[FilterResult], num_rows: int
) -> Decision:
    """The verdicts of families run in sequence: a row is removed by the first family whose
    rules it fails, for the first of them."""
    keep = np.ones(num_rows, bool)
    reason = pa.nulls(num_rows, pa.string())
    saw_edited = np.zeros(num_rows, bool)
    edited = False
    for family, verdict in zip(families, verdicts, strict=True):
        removed = keep & ~verdict.keep
        reason = pc.if_else(pa.array(removed), verdict.reason, reason)
        saw_edited[removed] = edited
        keep &= verdict.keep
        edited |= family.edits
    return Decision(keep, reason, saw_edited)


def signal_values(group: pa.StructArray) -> dict[str, Any]:
    """A group of signals as a family's `decide` takes them: numbers as numpy, strings as
    pyarrow."""
    values: dict[str, Any] = {}
    for index, field in enumerate(group.type):
        column = group.field(index)
        string = pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        values[field.name] = column if string else column.to_numpy(zero_copy_only=False)
    return values


def document_signals(splits: Splits) -> dict[str, np.ndarray]:
    """The DOCUMENT_SIGNALS of each text of a view."""
    return {
        "chars": splits.chars,
        "lines": np.bincount(splits.nonempty_lines[1], minlength=splits.num_rows),
        "words": splits.word_counts,
        "compression_ratio": splits.compression_ratios,
    }


def _struct(signals: Mapping[str, Any], fields: Sequence[pa.Field]) -> pa.StructArray:
    """Signals as a struct array of `fields`, in their order."""
    arrays = [pa.array(signals[field.name], field.type) for field in fields]
    return pa.StructArray.from_arrays(arrays, fields=list(fields))


def first_failures(
    name: str, num_rows: int, rules: Sequence[tuple[str, np.ndarray]]
) -> FilterResult:
    """Combine per-rule failure masks, checked in the given order, into a verdict per row."""
    failed = np.vstack([np.asarray(mask, bool) for _, mask in rules])
    any_failed = failed.any(axis=0)
    first = pa.array(failed.argmax(axis=0), pa.int32(), mask=~any_failed)
    names = pa.array([f"{name}:{rule}" for rule, _ in rules], pa.string())
    return FilterResult(~any_failed, names.take(first))


class Splits:
    """An immutable view of a batch's texts, their lines and their words, shared by the filters.

    Every value it holds is a function of `texts` alone, computed when first asked for, so none
    can go stale: a filter that edits texts makes a new view of the new texts. Lines are the
    texts split at "\\n", empty lines included; a text's words are its lines' words
    (split_words), in order, since no word runs across a line break. Narrowed to the rows a
    filter keeps (`filter`), a view carries over what it has computed.
    """

    def __init__(self, texts: pa.Array, known: dict[str, Any] | None = None):
        """A view of `texts`; `known` holds values derived from exactly these texts (by the
        methods below), which are taken instead of computed."""
        object.__setattr__(self, "texts", texts)
        self.__dict__.update(known or {})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a Splits view is immutable; make a new one rather than set {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a Splits view is immutable; {name} cannot be deleted")

    @classmethod
    def of(cls, texts: pa.Array | pa.ChunkedArray) -> Splits:
        """The view of `texts`."""
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        return cls(texts)

    @property
    def num_rows(self) -> int:
        """The number of texts."""
        return len(self.texts)

    @property
    def lines(self) -> pa.Array:
        """Every line of every text, in order, empty ones included."""
        return self._lines[0]

    @property
    def line_rows(self) -> np.ndarray:
        """The row each line came from."""
        return self._lines[1]

    @cached_property
    def words(self) -> Words:
        """The words of each text."""
        line_words = self._line_words
        rows = self.line_rows[pc.list_parent_indices(line_words).to_numpy()]
        return Words(pc.list_flatten(line_words), rows, self.num_rows)

    @cached_property
    def line_word_counts(self) -> np.ndarray:
        """The number of words of each line."""
        return pc.list_value_length(self._line_words).to_numpy(zero_copy_only=False)

    @cached_property
    def word_counts(self) -> np.ndarray:
        """The number of words of each text: from the lines' counts when those are known without
        the words (as after a filter that edits texts), else from the words."""
        if "line_word_counts" in vars(self) and "words" not in vars(self):
            counts = np.bincount(self.line_rows, self.line_word_counts, minlength=self.num_rows)
            return counts.astype(np.int64)
        return self.words.counts

    @cached_property
    def nonempty_lines(self) -> tuple[pa.Array, np.ndarray]:
        """The non-empty lines, with the row each came from."""
        nonempty = to_bool(pc.greater(pc.binary_length(self.lines), 0))
        return self.lines.filter(pa.array(nonempty)), self.line_rows[nonempty]

    @cached_property
    def paragraphs(self) -> tuple[pa.Array, np.ndarray]:
        """The non-empty paragraphs (parts between blank lines), with the row each came from."""
        return split_nonempty(self.texts, r"\n\n+")

    @cached_property
    def chars(self) -> np.ndarray:
        """The length of each text in characters."""
        return pc.utf8_length(self.texts).to_numpy()

    @cached_property
    def compression_ratios(self) -> np.ndarray:
        """Each text's UTF-8 bytes over its zstd-compressed bytes (level 3): high for repetitive
        text, near 1 for random or encoded text (the document signals and filters/compression.py
        share it)."""
        compressor = zstandard.ZstdCompressor(level=_COMPRESSION_LEVEL)
        encoded = [text.encode() for text in self.texts.to_pylist()]
        sizes = np.array([len(text) for text in encoded], np.float64)
        compressed = np.array([len(compressor.compress(text)) for text in encoded], np.float64)
        return ratio(sizes, compressed)

    def filter(self, keep: np.ndarray) -> Splits:
        """The view of the rows where `keep` is true, with what was computed of them so far."""
        computed = vars(self)
        known: dict[str, Any] = {}
        if "_lines" in computed:
            line_keep = keep[self.line_rows]
            new_rows = np.cumsum(keep) - 1
            lines = self.lines.filter(pa.array(line_keep))
            known["_lines"] = (lines, new_rows[self.line_rows[line_keep]])
            if "line_word_counts" in computed or "_line_words" in computed:
                known["line_word_counts"] = self.line_word_counts[line_keep]
        if "words" in computed:
            known["words"] = self.words.filter(keep)
        if "word_counts" in computed:
            known["word_counts"] = self.word_counts[keep]
        return Splits(self.texts.filter(pa.array(keep)), known)

    def rewritten(self, texts: pa.Array) -> Splits:
        """The view of `texts`, these rows' texts edited without adding or removing line breaks,
        with their lines' word counts: only the lines that changed are split again."""
        new = Splits(texts)
        changed = np.flatnonzero(~to_bool(pc.equal(new.lines, self.lines)))
        counts = self.line_word_counts.copy()
        if len(changed):
            fresh = split_words(new.lines.take(pa.array(changed)))
            counts[changed] = pc.list_value_length(fresh).to_numpy(zero_copy_only=False)
        return new.knowing_line_word_counts(counts)

    def knowing_line_word_counts(self, counts: np.ndarray) -> Splits:
        """This view, given its lines' word counts, which an editing filter knows from the lines
        it kept, so they need not be split again."""
        return Splits(self.texts, vars(self) | {"line_word_counts": counts})

    @cached_property
    def _lines(self) -> tuple[pa.Array, np.ndarray]:
        """The lines of the texts and the row of each."""
        parts = pc.split_pattern(self.texts, "\n")
        return pc.list_flatten(parts), pc.list_parent_indices(parts).to_numpy()

    @cached_property
    def _line_words(self) -> pa.LargeListArray:
        """The words of each line, split once for `words` and `line_word_counts`."""
        return split_line_words(self.texts)


def split_nonempty(texts: pa.Array, separator: str) -> tuple[pa.Array, np.ndarray]:
    """All non-empty parts of all texts split at the RE2 `separator`, flattened, with the row
    index each part came from: lines with "\\n", paragraphs with "\\n\\n+"."""
    parts = pc.split_pattern_regex(texts, separator)
    flat = pc.list_flatten(parts)
    parents = pc.list_parent_indices(parts).to_numpy()
    nonempty = pc.greater(pc.binary_length(flat), 0)
    return flat.filter(nonempty), parents[to_bool(nonempty)]


def sentence_counts(texts: pa.Array) -> np.ndarray:
    """The number of sentences of each text: the runs of sentence-ending marks of any script that
    end a sentence (SENTENCE_STOPS, and LATIN_SENTENCE_STOPS before a space or the text's end,
    not after a section number, an initial or an abbreviation)."""
    bare = pc.replace_substring_regex(texts, _NOT_A_SENTENCE_END, r"\1")
    # Twice: a match takes the letter before an initial, so the next initial of a run of them
    # ("R. R.") is found only once that one's period is gone. Only in the texts the first pass
    # shortened: it left the others as they were, and so would the second.
    again = to_bool(pc.not_equal(pc.binary_length(bare), pc.binary_length(texts)))
    if again.any():
        twice = pc.replace_substring_regex(bare.filter(again), _NOT_A_SENTENCE_END, r"\1")
        bare = pc.replace_with_mask(bare, pa.array(again), twice)
    return pc.count_substring_regex(bare, _SENTENCE_END).to_numpy(zero_copy_only=False)


def ends_with_terminal_punctuation(lines: pa.Array) -> np.ndarray:
    """Whether each line ends with a sentence-ending mark of any script (TERMINAL_PUNCTUATION)."""
    return matches(lines, _ENDS_WITH_TERMINAL)


def ends_with_ellipsis(lines: pa.Array) -> np.ndarray:
    """Whether each line ends with an ellipsis, three dots or the single character."""
    return to_bool(pc.or_(pc.ends_with(lines, "..."), pc.ends_with(lines, "…")))


def is_in(values: pa.Array, options: Sequence[str]) -> np.ndarray:
    """Whether each string is one of `options` (null is not)."""
    return to_bool(pc.is_in(values, pa.array(list(options), pa.string())))


def matches(strings: pa.Array, pattern: str, ignore_case: bool = False) -> np.ndarray:
    """Whether each string contains a match of the RE2 `pattern` (null strings do not)."""
    return to_bool(pc.match_substring_regex(strings, pattern, ignore_case=ignore_case))


def later_duplicates(values: pa.Array, parents: np.ndarray) -> np.ndarray:
    """Whether each value repeats an earlier value of the same row (the first occurrence is not)."""
    ids = pc.dictionary_encode(values).indices.to_numpy().astype(np.int64)
    keys = parents.astype(np.int64) * (int(ids.max(initial=0)) + 1) + ids
    duplicate = np.ones(len(keys), bool)
    duplicate[np.unique(keys, return_index=True)[1]] = False
    return duplicate


def per_row(values: np.ndarray, parents: np.ndarray, num_rows: int) -> np.ndarray:
    """Sum `values` (bools count as 1) into one total per row."""
    values = np.asarray(values)
    if values.dtype == bool:
        return np.bincount(parents[values], minlength=num_rows).astype(np.float64)
    return np.bincount(parents, weights=values.astype(np.float64), minlength=num_rows)


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator elementwise, 0 where the denominator is 0."""
    numerator = np.asarray(numerator, np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def to_bool(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean pyarrow array as numpy, nulls as False."""
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
