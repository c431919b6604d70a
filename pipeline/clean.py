"""The clean stage: read every input split, extract and normalize text, identify languages, filter.

Work is one Dask task per group of input splits. Task N writes `OUT/clean/part-N.parquet` (the
documents kept), `OUT/rejected/part-N.parquet` (every record that was not kept, with its step and
reason: first those rejected before the filters' verdicts, then those the verdicts removed, each
in input order), `OUT/signals/part-N.parquet` (every document the filters measured, with their
statistics, from which refilter.py decides new thresholds) and, last, its done marker
`OUT/clean/_done/part-N.json` holding its counts and the byte ranges it read (the run layout,
loader/layout.py, names them). A rerun skips the tasks whose marker records the byte ranges the
task reads now, so a crashed run resumes where it stopped, and removes the parts past the plan.
Every record read is either kept or rejected: the counts check `kept + rejected == read`.
Parquet row groups close at a size of their own, whatever the batches, so that the parts
refilter.py rewrites are the bytes a run with its thresholds writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import Client

from corpusmill.core.atomic import atomic_path, write_json
from corpusmill.core.errors import StageError
from corpusmill.core.storage import Location, location, storage_options
from corpusmill.loader.layout import RunLayout, part_name
from corpusmill.pipeline.cluster import run_tasks
from corpusmill.pipeline.config import RunConfig
from corpusmill.pipeline.filters import (
    Decision,
    Filter,
    FilterResult,
    RuleFamily,
    apply_filters,
    build_custom,
    build_families,
    judge_families,
    signals_type,
)
from corpusmill.pipeline.langid import identify_languages
from corpusmill.pipeline.normalize import normalize_text
from corpusmill.pipeline.pii import mask_pii
from corpusmill.pipeline.readers import (
    InputFile,
    ReadBatch,
    ReadConfig,
    Split,
    plan_splits,
    read_split,
    split_size,
)
from corpusmill.pipeline.schema import DOCUMENTS, REJECTED, paired_texts, signals_schema
from corpusmill.pipeline.stats import add_counts, count_by_reason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CleanTask:
    """A group of consecutive input splits, cleaned by one Dask task into part `index`."""

    index: int
    splits: tuple[Split, ...]

    @property
    def name(self) -> str:
        return part_name(self.index)


def run_clean(
    config: RunConfig,
    client: Client,
    files: Sequence[InputFile],
    layout: RunLayout | None = None,
) -> dict[str, Any]:
    """Clean the input `files` (as discovery found `config.inputs`) into `OUT/clean/` of
    `layout` (default: the folder `config.out` names), skipping finished tasks; return the
    stage's counts."""
    started = time.perf_counter()
    layout = layout or output_layout(config)
    tasks = clean_tasks(files, config.read)
    _remove_parts_past(layout, len(tasks))
    todo = [task for task in tasks if not clean_done(layout, task)]
    log.info(
        "clean: %d files, %d tasks, %d already done", len(files), len(tasks), len(tasks) - len(todo)
    )
    run_tasks(
        client,
        clean_task,
        todo,
        describe=_describe,
        desc="clean",
        done=len(tasks) - len(todo),
        task_bytes=lambda task: sum(map(_split_bytes, task.splits)),
        config=config,
        layout=layout,
    )
    stats = summarize([json.loads(layout.clean_marker(task.index).read_text()) for task in tasks])
    stats.update(
        files=len(files), tasks=len(tasks), seconds=round(time.perf_counter() - started, 3)
    )
    unreadable = sum(
        counts["docs"]
        for reason, counts in stats["rejected"].items()
        if reason.startswith(("read:", "extract:"))
    )
    if stats["read"]["docs"] == unreadable:
        raise StageError(
            f"clean: no document could be read from {len(files)} input files "
            f"({unreadable} unreadable records); see the reasons in {layout.rejected} "
            "and check the input formats and the read.text_key setting"
        )
    return stats


def output_layout(config: RunConfig) -> RunLayout:
    """The layout of the run folder `config.out` names, local or reached with the config's
    storage options."""
    return RunLayout(location(config.out, storage_options(config.storage)))


def clean_tasks(files: Sequence[InputFile], config: ReadConfig) -> list[CleanTask]:
    """The stage's tasks: the inputs' splits grouped up to the planned split size, so a crawl of a
    few large files gives every worker work as a crawl of many small ones does."""
    return plan_tasks(plan_splits(files, config), split_size(files, config))


def plan_tasks(splits: Sequence[Split], target_bytes: int) -> list[CleanTask]:
    """Group consecutive splits into as many tasks as `target_bytes` fits into their total, each
    closed once the splits so far reach its equal share of the total: tasks of even size keep
    every worker busy to the end (closing groups at `target_bytes` left 7 tasks of 3 files where
    8 fit, and one worker idle for the last of them). Depends on the inputs and `target_bytes`
    only, never on the workers, so a rerun resumes the same tasks."""
    sizes = [_split_bytes(split) for split in splits]
    total = sum(sizes)
    count = max(1, math.ceil(total / target_bytes))
    tasks: list[CleanTask] = []
    group: list[Split] = []
    done = 0
    for split, size in zip(splits, sizes, strict=True):
        group.append(split)
        done += size
        if done * count >= total * (len(tasks) + 1):
            tasks.append(CleanTask(len(tasks), tuple(group)))
            group = []
    if group:
        tasks.append(CleanTask(len(tasks), tuple(group)))
    return tasks


def clean_task(
    task: CleanTask, config: RunConfig, layout: RunLayout | None = None
) -> dict[str, Any]:
    """Clean one task's splits into its part files in `layout` (default: the folder
    `config.out` names), then write its done marker; return counts."""
    layout = layout or output_layout(config)
    families = build_families(config.filters, layout.reference_model)
    others = build_custom(config.filters)
    with (
        part_writer(layout, task.index, task_splits(task)) as part,
        _signals_sink(layout, task.index, families, config.filters.store_signals) as measured_sink,
        _spill(REJECTED) as removed,
    ):
        for batch in task_batches(task, config.read):
            cleaned = _cleaned(batch.docs, config, families, others)
            part.keep(cleaned.kept)
            part.reject(pa.concat_tables([batch.rejected, cleaned.rejected]))
            removed.write(cleaned.removed)
            measured_sink(cleaned.measured)
            part.counters.update(batch.counters)
            part.counters.update(cleaned.counters)
        for table in removed.tables():
            part.reject(table)
    return part.record


def _signals_sink(
    layout: RunLayout, index: int, families: Sequence[RuleFamily], store: bool
) -> contextlib.AbstractContextManager:
    """Where task `index` appends its documents' signals: OUT/signals/, or nowhere for a run
    that does not store them (filters.store_signals)."""
    if not store:
        return contextlib.nullcontext(lambda measured: None)
    return parquet_sink(layout.signals_part(index), signals_schema(signals_type(families)))


class PartWriter:
    """The kept and rejected files of a clean part being written, and the counts of its marker."""

    def __init__(self, keep: Any, reject: Any) -> None:
        self._keep, self._reject = keep, reject
        self.kept = Counter(docs=0, bytes=0)
        self.reasons: list[dict[str, dict[str, int]]] = []
        self.counters: Counter[str] = Counter()
        self.record: dict[str, Any] = {}

    def keep(self, docs: pa.Table) -> None:
        """Append kept documents."""
        self._keep(docs)
        self.kept.update(docs=docs.num_rows, bytes=text_bytes(docs))

    def reject(self, rows: pa.Table) -> None:
        """Append rejected rows."""
        self._reject(rows)
        self.reasons.append(count_by_reason(rows))


@contextlib.contextmanager
def part_writer(
    layout: RunLayout, index: int, splits: list[list[Any]], write_kept: bool = True
) -> Iterator[PartWriter]:
    """A PartWriter of clean part `index`; once both of its files are in place, its marker,
    which the writer's `record` then holds. With `write_kept` False the documents kept are
    counted only, their file left as it is (refilter.py: it holds them already)."""
    kept = parquet_sink(layout.clean_part(index), DOCUMENTS) if write_kept else None
    with (
        kept or contextlib.nullcontext(lambda docs: None) as keep,
        parquet_sink(layout.rejected_part(index), REJECTED) as reject,
    ):
        part = PartWriter(keep, reject)
        yield part
    part.record = {
        "task": index,
        "splits": splits,
        "kept": dict(part.kept),
        "rejected": add_counts(part.reasons),
        "counters": dict(sorted(part.counters.items())),
    }
    write_json(layout.clean_marker(index), part.record)


def decided_rows(docs: pa.Table, texts: pa.Array, decision: Decision) -> tuple[pa.Table, pa.Table]:
    """The documents the built-in filters kept, with the texts as they left them, and the rows
    of those they removed, with the text the filter that removed each saw."""
    keep = pa.array(decision.keep, pa.bool_())
    drop = pc.invert(keep)
    field = DOCUMENTS.field("text")
    texts = texts.cast(field.type)
    seen = pc.if_else(pa.array(decision.saw_edited, pa.bool_()), texts, docs["text"])
    text_index = docs.schema.get_field_index("text")
    kept = docs.filter(keep).set_column(text_index, field, texts.filter(keep))
    removed = docs.filter(drop).set_column(text_index, field, seen.filter(drop))
    step_reason = pc.split_pattern(decision.reason.filter(drop), ":", max_splits=1)
    rows = rejected_rows(removed, pc.list_element(step_reason, 0), pc.list_element(step_reason, 1))
    return kept, rows


def clean_done(layout: RunLayout, task: CleanTask) -> bool:
    """Whether the task's marker exists and records the byte ranges the task reads now: a marker
    of an earlier plan covers other ones, and its parts would duplicate or lose documents."""
    marker = layout.clean_marker(task.index)
    if not marker.exists():
        return False
    return json.loads(marker.read_text()).get("splits") == task_splits(task)


def task_splits(task: CleanTask) -> list[list[Any]]:
    """What a task reads, as its marker records it: [source, start, end] per split. Sources
    rather than URLs, so a run whose inputs moved with their root (as inputs.json allows)
    resumes."""
    return [[split.file.source, split.start, split.end] for split in task.splits]


def task_batches(task: CleanTask, config: ReadConfig) -> Iterator[ReadBatch]:
    """The records of a task's splits, in order, in batches as large as `read.batch_docs` and
    `read.batch_bytes` allow: a small file's split comes as one small batch, and each batch costs
    the filters a fixed time (regular expressions compiled, calls per batch), a fifth of their
    time on batches of 1 MB of text."""
    pending: list[ReadBatch] = []
    docs = size = 0
    for split in task.splits:
        for batch in read_split(split, config):
            rows, text = batch.docs.num_rows, text_bytes(batch.docs)
            if pending and (docs + rows > config.batch_docs or size + text > config.batch_bytes):
                yield _merged(pending)
                pending, docs, size = [], 0, 0
            pending.append(batch)
            docs, size = docs + rows, size + text
    if pending:
        yield _merged(pending)


def clean_batch(
    docs: pa.Table, config: RunConfig, filters: Sequence[Filter]
) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """Normalize, identify languages, mask PII and filter one batch with `filters` (as
    build_filters makes them): (kept, rejected, counters)."""
    families = [filt for filt in filters if isinstance(filt, RuleFamily)]
    others = [filt for filt in filters if not isinstance(filt, RuleFamily)]
    cleaned = _cleaned(docs, config, families, others)
    return cleaned.kept, pa.concat_tables([cleaned.rejected, cleaned.removed]), cleaned.counters


@dataclass(frozen=True)
class Cleaned:
    """A batch cleaned: the documents kept, the rows rejected before the filters' verdicts (or by
    a step's error), the rows the verdicts removed, every document the built-in filters measured
    with their signals (signals_schema), and the steps' counters."""

    kept: pa.Table
    rejected: pa.Table
    removed: pa.Table
    measured: pa.Table
    counters: dict[str, int]


def _cleaned(
    docs: pa.Table, config: RunConfig, families: Sequence[RuleFamily], others: Sequence[Filter]
) -> Cleaned:
    """What clean_batch does, apart. A step that raises on some documents costs only them,
    rejected with the step and reason `error`; one that raises with no document at all fails
    the task, as the fault is not in the data (a missing language model, say)."""
    try:
        return _clean_steps(docs, config, families, others)
    except _StepFailed as failure:
        try:
            _clean_steps(docs.slice(0, 0), config, families, others)
        except _StepFailed as fault:
            raise fault.__cause__ from None
        return _cleaned_apart(docs, config, families, others, failure)


def _clean_steps(
    docs: pa.Table, config: RunConfig, families: Sequence[RuleFamily], others: Sequence[Filter]
) -> Cleaned:
    """What _cleaned does, each step raising _StepFailed with its name if it fails."""
    with _step("normalize"):
        docs = normalize_text(docs)
    empty = pc.equal(pc.utf8_length(docs["text"]), 0)
    rejected = rejected_rows(docs.filter(empty), "normalize", "empty_text")
    with _step("langid"):
        docs = identify_languages(docs.filter(pc.invert(empty)), config.langid)
    counters: dict[str, int] = {}
    if config.pii.enabled:
        with _step("pii"):
            docs, counters = mask_pii(docs, config.pii)
    docs = docs.cast(DOCUMENTS)
    with _step("filters"):
        decision, signals, texts = judge_families(docs, families, _step)
        kept, removed = decided_rows(docs, texts, decision)
        kept, dropped = apply_filters(kept, [_NamedFilter(filt) for filt in others])
    step_reason = pc.split_pattern(dropped["reason"], ":", max_splits=1)
    dropped_rows = rejected_rows(
        dropped.drop_columns(["reason"]),
        pc.list_element(step_reason, 0),
        pc.list_element(step_reason, 1),
    )
    return Cleaned(
        kept,
        rejected,
        pa.concat_tables([removed, dropped_rows]),
        measured_rows(docs, texts, signals),
        counters,
    )


def measured_rows(docs: pa.Table, texts: pa.Array, signals: pa.StructArray) -> pa.Table:
    """The rows of OUT/signals/ of documents as they reached the filters, `texts` the filters
    left beside the texts they reached."""
    paired = paired_texts(docs["text"].combine_chunks(), texts)
    table = docs.drop_columns(["text"]).append_column("texts", paired)
    return table.append_column("signals", signals).cast(signals_schema(signals.type))


def _cleaned_apart(
    docs: pa.Table,
    config: RunConfig,
    families: Sequence[RuleFamily],
    others: Sequence[Filter],
    failure: _StepFailed,
) -> Cleaned:
    """Clean a batch that `failure` stopped in halves, and their halves, until each document a
    step fails on is alone and rejected: the good path stays one vectorized batch, and a bad
    document costs about two more passes over its batch."""
    if docs.num_rows == 1:
        cause = failure.__cause__
        log.warning(
            "%s: %s:error (%s: %s); the document is rejected",
            docs["id"][0].as_py(),
            failure.step,
            type(cause).__name__,
            cause,
        )
        log.debug("traceback of the error above", exc_info=cause)
        none = docs.slice(0, 0).cast(DOCUMENTS)
        measured = signals_schema(signals_type(families)).empty_table()
        error = rejected_rows(docs, failure.step, "error")
        return Cleaned(none, error, error.slice(0, 0), measured, {})
    parts = []
    middle = docs.num_rows // 2
    for half in (docs.slice(0, middle), docs.slice(middle)):
        try:
            parts.append(_clean_steps(half, config, families, others))
        except _StepFailed as failed:
            parts.append(_cleaned_apart(half, config, families, others, failed))
    counters: Counter[str] = Counter()
    for part in parts:
        counters.update(part.counters)
    return Cleaned(
        pa.concat_tables([part.kept for part in parts]),
        pa.concat_tables([part.rejected for part in parts]),
        pa.concat_tables([part.removed for part in parts]),
        pa.concat_tables([part.measured for part in parts]),
        dict(counters),
    )


class _StepFailed(Exception):
    """A clean step raised (the exception is the cause); `step` names it as rejections do."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


@contextlib.contextmanager
def _step(name: str) -> Iterator[None]:
    """Turn an exception raised inside into _StepFailed(name), unless a step inside named it."""
    try:
        yield
    except _StepFailed:
        raise
    except Exception as exc:  # which documents it costs is decided by the caller
        raise _StepFailed(name) from exc


@dataclass(frozen=True)
class _NamedFilter:
    """A filter whose failures are reported under its name."""

    filt: Filter

    @property
    def name(self) -> str:
        return self.filt.name

    def __call__(self, docs: pa.Table, splits: Any = None) -> FilterResult:
        with _step(self.filt.name):
            return self.filt(docs, splits=splits)


def rejected_rows(docs: pa.Table, step: Any, reason: Any) -> pa.Table:
    """Documents turned into rejected rows with a step and reason (scalars or arrays)."""
    n = docs.num_rows
    return pa.table(
        {
            "id": docs["id"],
            "source": docs["source"],
            "offset": docs["offset"],
            "url": docs["url"],
            "step": step if isinstance(step, (pa.Array, pa.ChunkedArray)) else pa.repeat(step, n),
            "reason": reason
            if isinstance(reason, (pa.Array, pa.ChunkedArray))
            else pa.repeat(reason, n),
            "bytes": pc.cast(pc.binary_length(docs["text"]), pa.int64()),
            "text": docs["text"],
        },
        schema=REJECTED,
    )


def summarize(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Add up the counts of all tasks: read, kept, rejected per reason, and counters."""
    kept = add_counts([{"kept": part["kept"]} for part in parts]).get(
        "kept", {"docs": 0, "bytes": 0}
    )
    rejected = add_counts([part["rejected"] for part in parts])
    rejected_total = add_counts([{"all": fields} for fields in rejected.values()]).get("all", {})
    read = {field: kept.get(field, 0) + rejected_total.get(field, 0) for field in ("docs", "bytes")}
    counters = sum((Counter(part["counters"]) for part in parts), Counter())
    return {
        "read": read,
        "kept": kept,
        "rejected": rejected,
        "counters": dict(sorted(counters.items())),
    }


def _describe(task: CleanTask) -> str:
    """A task as a failure message names it: its part and the byte ranges it reads."""
    where = ", ".join(f"{s.file.source}[{s.start}:{s.end}]" for s in task.splits)
    return f"{task.name} ({where})"


@contextlib.contextmanager
def parquet_sink(path: Location, schema: pa.Schema) -> Iterator:
    """A function that appends tables to a zstd Parquet file written atomically at the end.

    Row groups close where the rows so far reach ROW_GROUP_ROWS or ROW_GROUP_TEXT_BYTES of text,
    whatever tables they came in: the same rows make the same bytes, however batched.
    """
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        pending: list[pa.Table] = []
        rows = size = 0

        def flush() -> None:
            nonlocal pending, rows, size
            if rows:
                group = pa.concat_tables(pending).combine_chunks()
                writer.write_table(group, row_group_size=group.num_rows)
            pending, rows, size = [], 0, 0

        def write(table: pa.Table) -> None:
            nonlocal rows, size
            table = table.cast(schema)
            sizes = _text_sizes(table)
            while table.num_rows:
                reached = (size + np.cumsum(sizes) >= ROW_GROUP_TEXT_BYTES) | (
                    rows + np.arange(1, table.num_rows + 1) >= ROW_GROUP_ROWS
                )
                end = int(np.argmax(reached)) + 1 if reached.any() else table.num_rows
                pending.append(table.slice(0, end))
                rows, size = rows + end, size + int(sizes[:end].sum())
                if reached.any():
                    flush()
                table, sizes = table.slice(end), sizes[end:]

        yield write
        flush()


# Where the row groups of a part close (parquet_sink): a group's rows are read at once.
ROW_GROUP_ROWS = 8192
ROW_GROUP_TEXT_BYTES = 32 << 20


def _text_sizes(table: pa.Table) -> np.ndarray:
    """The UTF-8 bytes of each row's text, or texts (0 for a table without them, or a null
    text)."""
    if not table.num_rows or not {"text", "texts"} & set(table.column_names):
        return np.zeros(table.num_rows, np.int64)
    if "texts" in table.column_names:
        texts = table["texts"].combine_chunks()
        sizes = pc.binary_length(pc.list_flatten(texts)).to_numpy()
        rows = pc.list_parent_indices(texts).to_numpy()
        return np.bincount(rows, sizes, minlength=table.num_rows).astype(np.int64)
    return pc.fill_null(pc.binary_length(table["text"]), 0).to_numpy().astype(np.int64)


@contextlib.contextmanager
def _spill(schema: pa.Schema) -> Iterator[_Spill]:
    """A local file holding tables of `schema` until the task reads them back, in order."""
    with tempfile.TemporaryDirectory(prefix="corpusmill-") as folder:
        yield _Spill(Path(folder) / "spill.arrow", schema)


class _Spill:
    """Tables appended to an Arrow file, read back by `tables` once all are written."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.schema = path, schema
        self.writer = pa.ipc.new_file(path, schema)

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table.cast(self.schema))

    def tables(self) -> Iterator[pa.Table]:
        self.writer.close()
        reader = pa.ipc.open_file(self.path)
        for index in range(reader.num_record_batches):
            yield pa.Table.from_batches([reader.get_batch(index)])


def _remove_parts_past(layout: RunLayout, count: int) -> None:
    """Delete the parts, and their markers, numbered `count` or more: an earlier plan made more
    tasks, and the later stages list every part in the folder."""
    for index in [index for index in layout.clean_parts() if index >= count]:
        log.info("clean: removing %s, past the %d tasks of the plan", part_name(index), count)
        for path in (
            layout.clean_marker(index),
            layout.clean_part(index),
            layout.rejected_part(index),
            layout.signals_part(index),
        ):
            path.unlink(missing_ok=True)


def _split_bytes(split: Split) -> int:
    """Input bytes a split covers, for grouping small splits into one task."""
    return max(split.end - split.start, 1)


def _merged(batches: Sequence[ReadBatch]) -> ReadBatch:
    """One batch of the documents, rejected records and counters of `batches`, in order."""
    counters: Counter[str] = Counter()
    for batch in batches:
        counters.update(batch.counters)
    return ReadBatch(
        pa.concat_tables([batch.docs for batch in batches]),
        pa.concat_tables([batch.rejected for batch in batches]),
        dict(counters),
    )


def text_bytes(docs: pa.Table) -> int:
    """UTF-8 bytes of a table's texts."""
    return int(pc.sum(pc.binary_length(docs["text"])).as_py() or 0)
