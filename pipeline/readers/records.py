"""What a reader yields, typed, and the batcher that turns it into Arrow tables of bounded size.

A format reader yields one record per input record, as it is read: a `Document`, a `Rejection`
(logged here, with its file and offset) or a `Count` of something seen that is neither. Readers
that produce columns in bulk (Parquet record batches, JSONL blocks parsed by Arrow) yield them as
a `DocumentBlock` and their bad rows as one `Rejections`, so no document becomes a Python object.
`Batcher` gathers a split's records into `ReadBatch`es of at most `batch_docs` documents and about
`batch_bytes` of text, counted in UTF-8 bytes whichever way the documents came.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.pipeline.schema import DOCUMENTS, REJECTED, document_id

if TYPE_CHECKING:
    from corpusmill.pipeline.readers.streams import ByteReader

log = logging.getLogger(__name__)

# Enough to see what is wrong with a file without flooding the log when all of it is broken.
_MAX_WARNINGS = 20


class Document(NamedTuple):
    """A document read at `offset` (a byte offset, or a row number for Parquet)."""

    offset: int
    text: str
    url: str | None = None
    title: str | None = None
    meta: str | None = None


class Rejection(NamedTuple):
    """A record that did not become a document: `size` bytes at `offset`, why, and what was read.
    An `ordinary` one (a redirect or an image in a crawl) is logged at info level, not warned of."""

    offset: int
    reason: str
    size: int
    detail: str
    step: str = "read"
    url: str | None = None
    text: str | None = None
    ordinary: bool = False


class Count(NamedTuple):
    """`n` more of something a reader counts (empty files, skipped WARC records, bad UTF-8)."""

    name: str
    n: int = 1


class DocumentBlock(NamedTuple):
    """Documents as Arrow arrays of equal length (they have no title)."""

    offsets: pa.Array
    texts: pa.Array
    urls: pa.Array
    metas: pa.Array | None = None


class Rejections(NamedTuple):
    """Rejected records of one kind at once, logged as one line."""

    offsets: list[int]
    reason: str
    sizes: list[int]
    detail: str


Record = Document | Rejection | Count | DocumentBlock | Rejections


@dataclass
class ReadBatch:
    """What `read_split` yields: documents, rejected records and counters, bounded in size."""

    docs: pa.Table
    rejected: pa.Table
    counters: dict[str, int]


def damage(reader: ByteReader, size: int) -> Rejection:
    """Why a stream ended early (`reader.problem`), as a rejection where it ended: the rest of the
    stored file of `size` bytes from the problem's offset could not be read."""
    problem = reader.problem
    return Rejection(reader.pos, problem.reason, size - problem.offset, problem.detail)


def to_meta(fields: dict[str, Any]) -> str | None:
    """A document's `meta`: its non-null fields as JSON (ASCII, so lone surrogates are escaped)."""
    kept = {key: value for key, value in fields.items() if value is not None}
    return json.dumps(kept, default=str) if kept else None


class Batcher:
    """Gathers one file's records into `ReadBatch`es of at most `batch_docs` documents and about
    `batch_bytes` of UTF-8 text. Past `_MAX_WARNINGS` warnings a split's rejections are only
    summarised in the log; all of them are in the batches."""

    def __init__(self, url: str, source: str, batch_docs: int, batch_bytes: int) -> None:
        self.url = url
        self.source = source
        self.batch_docs = batch_docs
        self.batch_bytes = batch_bytes
        self._warnings = 0
        self._reset()

    def batches(self, records: Iterable[Record]) -> Iterator[ReadBatch]:
        """The records in batches, each yielded as soon as a record fills it."""
        for record in records:
            self._add(record)
            if self._pending_docs >= self.batch_docs or self._pending_bytes >= self.batch_bytes:
                yield from self._take()
        if self._warnings > _MAX_WARNINGS:
            log.warning(
                "%s: %d more rejected records not logged; they are in the rejected output",
                self.url,
                self._warnings - _MAX_WARNINGS,
            )
        if self._pending_docs or self._rejected or self._counters:
            yield from self._take()

    def _add(self, record: Record) -> None:
        match record:
            case Document():
                self._documents.append(record)
                self._pending_docs += 1
                self._pending_bytes += _utf8_length(record.text)
            case DocumentBlock(offsets, texts, urls, metas):
                self._flush_documents()
                nulls = pa.nulls(len(offsets), pa.string())
                metas = nulls if metas is None else metas
                self._tables.append(self._docs_table(offsets, texts, urls, nulls, metas))
                self._pending_docs += len(offsets)
                self._pending_bytes += pc.sum(pc.binary_length(texts)).as_py() or 0
            case Rejection():
                self._rejected.append(record)
                self._log(record)
            case Rejections(offsets, reason, sizes, detail):
                self._rejected.extend(
                    Rejection(offset, reason, size, detail)
                    for offset, size in zip(offsets, sizes, strict=True)
                )
                if offsets:
                    detail = f"{detail}; {len(offsets)} such records from here on in this batch"
                    self._log(Rejection(offsets[0], reason, 0, detail))
            case Count(name, n):
                self._counters[name] += n

    def _log(self, row: Rejection) -> None:
        """Log a rejection with the file and offset: a warning, or info when it is ordinary."""
        message = (
            "%s at byte %d: %s:%s (%s)",
            self.url,
            row.offset,
            row.step,
            row.reason,
            row.detail,
        )
        if row.ordinary:
            log.info(*message)
            return
        self._warnings += 1
        if self._warnings <= _MAX_WARNINGS:
            log.warning(*message)

    def _take(self) -> Iterator[ReadBatch]:
        """The pending documents (in slices of `batch_docs`), rejections and counters; the
        rejections and counters come with the first slice. The batcher starts empty again.
        """
        self._flush_documents()
        docs = pa.concat_tables(self._tables) if self._tables else DOCUMENTS.empty_table()
        rejected, counters = self._rejected_table(), dict(self._counters)
        self._reset()
        for start in range(0, max(docs.num_rows, 1), self.batch_docs):
            yield ReadBatch(docs.slice(start, self.batch_docs), rejected, counters)
            rejected, counters = REJECTED.empty_table(), {}

    def _reset(self) -> None:
        self._documents: list[Document] = []
        self._tables: list[pa.Table] = []
        self._rejected: list[Rejection] = []
        self._counters: Counter[str] = Counter()
        self._pending_docs = 0
        self._pending_bytes = 0

    def _flush_documents(self) -> None:
        """Turn the documents added one by one into an Arrow table, keeping their order."""
        if not self._documents:
            return
        offsets, texts, urls, titles, metas = zip(*self._documents, strict=True)
        self._tables.append(
            self._docs_table(
                pa.array(offsets, pa.int64()),
                pa.array(texts, pa.large_string()),
                pa.array(urls, pa.string()),
                pa.array(titles, pa.string()),
                pa.array(metas, pa.string()),
            )
        )
        self._documents = []

    def _docs_table(
        self, offsets: pa.Array, texts: pa.Array, urls: pa.Array, titles: pa.Array, metas: pa.Array
    ) -> pa.Table:
        n = len(offsets)
        return pa.table(
            {
                "id": self._ids(offsets),
                "text": texts.cast(pa.large_string()),
                "url": urls,
                "title": titles,
                "source": pa.array([self.source] * n, pa.string()),
                "offset": offsets.cast(pa.int64()),
                "lang": pa.nulls(n, pa.string()),
                "lang_score": pa.nulls(n, pa.float32()),
                "meta": metas,
            },
            schema=DOCUMENTS,
        )

    def _rejected_table(self) -> pa.Table:
        if not self._rejected:
            return REJECTED.empty_table()
        offsets, reasons, sizes, _, steps, urls, texts, _ = zip(*self._rejected, strict=True)
        offsets = pa.array(offsets, pa.int64())
        return pa.table(
            {
                "id": self._ids(offsets),
                "source": pa.array([self.source] * len(offsets), pa.string()),
                "offset": offsets,
                "url": pa.array(urls, pa.string()),
                "step": pa.array(steps, pa.string()),
                "reason": pa.array(reasons, pa.string()),
                "bytes": pa.array(sizes, pa.int64()),
                "text": pa.array(texts, pa.large_string()),
            },
            schema=REJECTED,
        )

    def _ids(self, offsets: pa.Array) -> pa.Array:
        return pa.array([document_id(self.source, o) for o in offsets.to_pylist()], pa.string())


def _utf8_length(text: str) -> int:
    """Bytes of `text` in UTF-8 (lone surrogates, which cannot be stored, count three each)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
