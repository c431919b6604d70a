"""New filter thresholds decided from the signals a run stored, without reading its inputs again:
`corpusmill refilter`, and `corpusmill run` of a config whose only changes are thresholds.

The clean stage keeps every document the built-in filters measured, as it reached them, with the
text they left and their signals (OUT/signals/). A family's verdict is a function of its signals
and thresholds alone, so for a config whose only changes are thresholds (keys outside each
family's `signal_keys`) the verdicts decided from the signals are those of a run reading the
crawl again, and so are the clean/ and rejected/ parts rewritten from them, byte for byte.

Deciding again is marked first (OUT/clean/_done/refilter.json), then the new config recorded;
while the mark is there, the parts may hold either thresholds' verdicts, and the next run's clean
stage (or refilter) deletes what the later stages made of them, rewrites every finished part
from its signals with the config it runs (one Dask task each) and removes the mark. So an
interrupted refilter, rerun with the old config or the new, ends in that config's parts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import Client

from corpusmill.core.atomic import folder_lock, write_json, write_text
from corpusmill.core.errors import ConfigError
from corpusmill.core.storage import Location, ObjectPath, damaged_file, open_input, remove
from corpusmill.loader.layout import RunLayout, part_name
from corpusmill.pipeline.clean import decided_rows, part_writer, summarize
from corpusmill.pipeline.cluster import dask_client, run_tasks
from corpusmill.pipeline.config import RunConfig, changed_keys, config_to_toml, load_config
from corpusmill.pipeline.filters import (
    FAMILIES,
    Decision,
    build_families,
    decide_filters,
    signals_type,
)
from corpusmill.pipeline.schema import DOCUMENTS, signals_schema, unpaired_texts
from corpusmill.pipeline.worker_storage import credentials_on_workers

log = logging.getLogger(__name__)

# The columns of a document but its text, which the signals parts hold as `texts`.
_OTHER_COLUMNS = [name for name in DOCUMENTS.names if name != "text"]
# What to do about a damaged signals part.
_REWRITE = "a full run writes it again: corpusmill run --force"


def refilter_run(
    out: Location, config_files: Sequence[str | Path], client: Client | None = None
) -> dict[str, Any]:
    """Decide the finished run in `out` again with its config changed by `config_files`, whose
    only changes must be filter thresholds (ConfigError otherwise); return the clean stage's
    new stats. Runs on `client`, or on the cluster the config names."""
    layout = RunLayout(out)
    if not layout.config.exists():
        raise ConfigError(f"{out} holds no run ({layout.config.name} is missing); check the path")
    with folder_lock(layout.lock):
        old = load_config([layout.config])
        new = load_config([layout.config, *config_files])
        parts = _finished_parts(layout)
        if why := refilter_refusal(layout, old, new):
            raise ConfigError(f"{out}: {why}; a full run is needed: corpusmill run --force")
        start_refilter(layout, changed_keys(old, new))
        write_text(layout.config, config_to_toml(new))
        started = time.perf_counter()
        options = layout.root.options if isinstance(layout.root, ObjectPath) else {}
        with contextlib.ExitStack() as stack:
            if client is None:
                client = stack.enter_context(dask_client(new.scheduler, new.workers))
            stack.enter_context(credentials_on_workers(client, options))
            finish_refilter(layout, new, client)
        stats = summarize([json.loads(layout.clean_marker(index).read_text()) for index in parts])
        stats.update(tasks=len(parts), seconds=round(time.perf_counter() - started, 3))
        write_json(layout.stats, {"clean": stats})
    return stats


def refilter_refusal(layout: RunLayout, old: RunConfig, new: RunConfig) -> str | None:
    """Why the run in `layout`, made with `old`, cannot be decided with `new` from its stored
    signals, or None if it can: `new` changes only thresholds, every finished part has its
    signals, and the first part's are of the layout this version writes, with every family's."""
    if old.filters.custom or new.filters.custom:
        return (
            "the run has filters of your own (filters.custom), whose verdicts cannot be decided "
            "from stored signals"
        )
    if refused := [key for key in changed_keys(old, new) if not refilterable(key)]:
        return (
            f"{', '.join(refused)} change what the clean stage reads or measures, not only "
            "filter thresholds"
        )
    if not old.filters.store_signals:
        return (
            "the run stored no signals to decide new thresholds from (filters.store_signals = "
            "false)"
        )
    done = [index for index in layout.clean_parts() if layout.clean_marker(index).exists()]
    if unmeasured := [part_name(i) for i in done if not layout.signals_part(i).exists()]:
        return f"no stored signals for {', '.join(unmeasured[:3])} (written by an older version)"
    return _layout_refusal(layout.signals_part(done[0]), new) if done else None


def _layout_refusal(part: Location, config: RunConfig) -> str | None:
    """Why the signals part `part` cannot be decided with `config`, or None: it lacks a family's
    signals, or its columns are not those this version writes. Only its footer is read (one
    range request on an object store); a footer that cannot be is damaged (StageError)."""
    with damaged_file(part, _REWRITE):
        stored = pq.read_schema(open_input(part))
    expected = signals_schema(signals_type(build_families(config.filters)))
    if missing := _missing_groups(stored, expected):
        return f"the stored signals have none of {', '.join(missing)} (written by an older version)"
    extra = [name for name in stored.names if name not in expected.names]
    absent = [name for name in expected.names if name not in stored.names]
    shared = [name for name in expected.names if name in stored.names]
    typed = [name for name in shared if stored.field(name).type != expected.field(name).type]
    if not (extra or absent or typed):
        return None
    has = [f"column{'s' * (len(extra) > 1)} {', '.join(extra)}"] if extra else []
    has += [f"no {', '.join(absent)}"] if absent else []
    has += [f"{', '.join(typed)} of another type"] if typed else []
    return (
        f"{part.parent.name}/{part.name} was written by an older layout of the stored signals "
        f"(it has {' and '.join(has)})"
    )


def _missing_groups(stored: pa.Schema, expected: pa.Schema) -> list[str]:
    """The groups (families) of the expected `signals` struct that a stored one lacks."""
    if "signals" not in stored.names or not pa.types.is_struct(stored.field("signals").type):
        return []
    names = {group.name for group in stored.field("signals").type}
    return [group.name for group in expected.field("signals").type if group.name not in names]


def start_refilter(layout: RunLayout, changed: Sequence[str]) -> None:
    """Mark the run's clean parts as to be decided again from their signals (with the changed
    keys, for a reader); the caller records the new config after."""
    write_json(layout.refilter_marker, {"changed": list(changed)})


def finish_refilter(layout: RunLayout, config: RunConfig, client: Client) -> None:
    """If the run's clean parts are marked to be decided again, delete what the later stages
    made of them, rewrite every finished part with `config`'s verdicts on `client`, and remove
    the mark; nothing otherwise."""
    if not layout.refilter_marker.exists():
        return
    parts = [index for index in layout.clean_parts() if layout.clean_marker(index).exists()]
    removed = _remove_later_stages(layout)
    log.info(
        "refilter: deciding %d clean parts again from their signals; removed %d outputs of "
        "later stages",
        len(parts),
        removed,
    )
    run_tasks(
        client,
        refilter_part,
        parts,
        describe=part_name,
        desc="refilter",
        config=config,
        layout=layout,
    )
    remove(layout.refilter_marker)


def refilterable(key: str) -> bool:
    """Whether a dotted config key is a threshold of a built-in family: it changes verdicts
    only, never the signals or the texts they are measured on."""
    section, family_name, name = (key.split(".") + ["", ""])[:3]
    family = next((family for family in FAMILIES if family.name == family_name), None)
    return (
        section == "filters"
        and family is not None
        and key.count(".") == 2
        and name != "enabled"
        and name not in family.signal_keys
    )


def refilter_part(index: int, config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    """Rewrite clean part `index` and its rejected part with `config`'s verdicts on its stored
    signals, then its marker; return the marker's counts.

    The records rejected before the verdicts (those not in the signals part) are kept as they
    are, first, as the clean stage writes them; the verdicts' rows follow in input order. A
    clean part that already keeps the documents the new verdicts keep is left as it is (its
    texts do not depend on thresholds), and so is a part whose rejected rows already have the
    new reasons: only ids, steps and reasons are read to know it.
    """
    families = build_families(config.filters)
    signals = layout.signals_part(index)
    marker = json.loads(layout.clean_marker(index).read_text())
    # Arrow's own threads on parts this small, beside a worker per core, cost a third of the
    # time they were to save: every read here is single-threaded.
    with damaged_file(signals, _REWRITE):
        measured = pq.ParquetFile(open_input(signals))
        judged = measured.read(columns=["id", "signals"], use_threads=False)
    ids = judged["id"].combine_chunks()
    decision = decide_filters(judged["signals"].combine_chunks(), families)
    keep = pa.array(decision.keep, pa.bool_())
    same_kept = _keeps(layout, index, marker, ids.filter(keep))
    # Every document measured was kept or removed by a verdict; the other rejected rows came
    # before the verdicts, and a part without any has its rejected part left unread.
    earlier = sum(counts["docs"] for counts in marker["rejected"].values())
    earlier -= len(ids) - marker["kept"]["docs"]
    rejected = layout.rejected_part(index)
    if same_kept and _lists(rejected, ids, decision):
        return marker
    with part_writer(layout, index, marker["splits"], write_kept=not same_kept) as part:
        part.counters.update(marker["counters"])
        # Rejected rows go in at once: the rows, not the calls, decide the part's bytes.
        removed = [_unmeasured(rejected, ids)] if earlier else []
        start = 0
        for batch in _documents(measured, signals):
            table = pa.Table.from_batches([batch])
            reached, texts = unpaired_texts(table["texts"].combine_chunks())
            table = table.append_column(DOCUMENTS.field("text"), reached)
            rows = slice(start, start + table.num_rows)
            start = rows.stop
            verdicts = Decision(
                decision.keep[rows],
                decision.reason.slice(rows.start, table.num_rows),
                decision.saw_edited[rows],
            )
            kept, dropped = decided_rows(table.select(DOCUMENTS.names), texts, verdicts)
            part.keep(kept)
            removed.append(dropped)
        part.reject(pa.concat_tables(removed))
    return part.record


def _documents(measured: pq.ParquetFile, part: Location) -> Iterator[pa.RecordBatch]:
    """The batches of the signals part `part` (open as `measured`) without its signals."""
    with damaged_file(part, _REWRITE):
        yield from measured.iter_batches(columns=[*_OTHER_COLUMNS, "texts"], use_threads=False)


def _unmeasured(rejected: Location, ids: pa.Array) -> pa.Table:
    """The rows of the `rejected` part of records not in `ids`: those rejected before the
    verdicts, which come first, in input order."""
    rows = pq.ParquetFile(open_input(rejected)).read(use_threads=False)
    return rows.filter(pc.invert(pc.is_in(rows["id"], ids)))


def _keeps(layout: RunLayout, index: int, marker: dict[str, Any], ids: pa.Array) -> bool:
    """Whether clean part `index` (of `marker`) holds the documents of `ids`, in order; another
    number kept says no, unread."""
    if marker["kept"]["docs"] != len(ids):
        return False
    clean = pq.ParquetFile(open_input(layout.clean_part(index)))
    return clean.read(columns=["id"], use_threads=False)["id"].combine_chunks().equals(ids)


def _lists(rejected: Location, ids: pa.Array, decision: Decision) -> bool:
    """Whether the `rejected` part lists the documents of `ids` that `decision` removes, with
    the reasons it gives."""
    listed = pq.ParquetFile(open_input(rejected))
    listed = listed.read(columns=["id", "step", "reason"], use_threads=False)
    listed = listed.filter(pc.is_in(listed["id"], ids))
    reasons = pc.binary_join_element_wise(listed["step"], listed["reason"], ":").combine_chunks()
    drop = pc.invert(pa.array(decision.keep, pa.bool_()))
    return listed["id"].combine_chunks().equals(ids.filter(drop)) and reasons.equals(
        decision.reason.filter(drop)
    )


def _finished_parts(layout: RunLayout) -> list[int]:
    """The run's clean parts, once each is known finished; ConfigError saying what to do
    otherwise."""
    parts = layout.clean_parts()
    unfinished = [part_name(i) for i in parts if not layout.clean_marker(i).exists()]
    if not parts or unfinished:
        missing = ", ".join(unfinished[:3]) or "no part written"
        raise ConfigError(
            f"{layout.root}: the clean stage has not finished ({missing}); finish it with "
            "corpusmill run first"
        )
    return parts


def _remove_later_stages(layout: RunLayout) -> int:
    """Delete what the stages after clean made of its parts (and a report of them), so that
    the next run makes it again from the new parts; return how many paths."""
    kept = {str(path) for path in (layout.clean, layout.rejected, layout.signals)}
    later = [path for path in layout.results() if str(path) not in kept]
    for path in later:
        remove(path)
    return len(later)
