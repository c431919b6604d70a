"""Refilter against the clean stage: new thresholds decided from stored signals, timed.

The clean stage runs on the generated crawl of `benchmarks/crawl.py` on a local Dask cluster of
`--workers` processes (its config written into the run folder, as `corpusmill run` does); then
`refilter_run` decides it again with other thresholds of every built-in family on the same
cluster. Both are timed as their stages report it (the seconds of their Dask tasks, without
cluster start-up) and the ratio is printed.

The cost the signals add to the clean stage is measured apart, in this process, on the documents
of the signals parts (every document that reached the filters): the filters run as before this
design (each family on the documents the families before it kept, `apply_filters`) against every
family measuring every document and the rows of the signals part made (`judge_families`,
`measured_rows`), and the bytes of the signals parts against those of the clean and rejected
parts.

On a 2-core machine shared with other work, 2 workers, new thresholds of every family changing
the verdicts of every part: on the generated crawl of 55.6 MB of HTML (584 pages, 9 parts by the
default plan) the clean stage took 3.0 to 8.9 s and refilter 0.22 to 0.25 s from run to run,
13x to 35x (the tasks' compute 14x to 38x); on 503.1 MB in 4 parts (`--html-mb 500 --splits 4`)
16.0 s against 0.77 s, 21x. Refilter reads the signals parts and writes zstd Parquet parts: in
one process a part of 125 MB of HTML takes 0.1 s, half of it in `write_table`, and a worker's
first part about twice that. Measuring every family on every document took -26 % to +10 % of
the filters' time in sequence (the noise of this machine), and the signals parts take twice the
bytes of the clean and rejected parts (each text twice: as it reached the filters and as C4 left
it).

    python benchmarks/refilter.py [--html-mb 50] [--splits 64] [--workers 2] [--root out/bench]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from crawl import DEFAULT_ROOT, crawl_for
from distributed import get_task_stream

from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.clean import measured_rows, run_clean
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import config_to_toml, load_config
from corpusmill.pipeline.filters import apply_filters, build_families, build_filters, judge_families
from corpusmill.pipeline.readers import discover_inputs
from corpusmill.pipeline.refilter import refilter_run
from corpusmill.pipeline.schema import DOCUMENTS, unpaired_texts

# Other thresholds for every built-in family, some looser and some stricter than the defaults.
NEW_THRESHOLDS = """\
[filters.language]
min_score = 0.9

[filters.gopher_repetition]
dup_line_frac = 0.25

[filters.gopher_quality]
min_words = 150
min_stop_words = 4

[filters.c4]
min_sentences = 3

[filters.fineweb]
line_punct_thr = 0.2
"""


def main() -> None:
    """Build or reuse the crawl, clean it, refilter it, print the times and the signals' cost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html-mb", type=int, default=50, help="least MB of HTML in the crawl")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--splits", type=int, default=64, help="read.splits: the parts the crawl is cut into"
    )
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help="cache folder of benchmark crawls"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    crawl = crawl_for(args.html_mb, None, args.root)
    out = Path(tempfile.mkdtemp(prefix="refilter-run-", dir=args.root))
    try:
        config = load_config(
            overrides={
                "inputs": crawl.warcs,
                "out": str(out),
                "workers": args.workers,
                "read.splits": args.splits,
            }
        )
        layout = RunLayout(out)
        with dask_client("", args.workers) as client:
            with get_task_stream(client) as clean_stream:
                clean = run_clean(config, client, discover_inputs(config.inputs, config.read))
            layout.config.write_text(config_to_toml(config))
            thresholds = out.parent / f"{out.name}-thresholds.toml"
            thresholds.write_text(NEW_THRESHOLDS)
            before = markers(layout)
            with get_task_stream(client) as refilter_stream:
                refiltered = refilter_run(out, [thresholds], client=client)
            thresholds.unlink()
        after = markers(layout)
        changed = sum(before[index] != after[index] for index in before)
        measured = pa.concat_tables(
            pq.read_table(layout.signals_part(index)) for index in layout.clean_parts()
        )
        print(
            f"crawl {crawl.folder}: {crawl.html_pages} pages, {crawl.html_bytes / 1e6:.1f} MB "
            f"of HTML; {args.workers} workers, {clean['tasks']} parts\n"
            f"clean stage:  {clean['seconds']:.3f} s, {clean['kept']['docs']} of "
            f"{measured.num_rows} filtered documents kept\n"
            f"refilter:     {refiltered['seconds']:.3f} s, {refiltered['kept']['docs']} kept, "
            f"{changed} of {len(before)} parts rewritten (their verdicts changed)\n"
            f"refilter is {clean['seconds'] / refiltered['seconds']:.0f}x faster than the "
            f"clean stage; its tasks computed {computing(refilter_stream):.3f} s in all, the "
            f"clean stage's {computing(clean_stream):.3f} s "
            f"({computing(clean_stream) / computing(refilter_stream):.0f}x)"
        )
        print_signals_cost(config, measured, layout)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def computing(stream: Any) -> float:
    """The seconds the tasks of a Dask task stream spent computing, on all workers."""
    return sum(
        part["stop"] - part["start"]
        for task in stream.data
        for part in task["startstops"]
        if part["action"] == "compute"
    )


def markers(layout: RunLayout) -> dict[int, str]:
    """The clean parts' markers, by part."""
    return {index: layout.clean_marker(index).read_text() for index in layout.clean_parts()}


def print_signals_cost(config, measured: pa.Table, layout: RunLayout) -> None:
    """The filters' time in sequence against every family on every document, in this process,
    and the bytes of the signals parts against the clean and rejected parts'."""
    reached, _ = unpaired_texts(measured["texts"].combine_chunks())
    docs = measured.append_column(DOCUMENTS.field("text"), reached).select(DOCUMENTS.names)
    filters, families = build_filters(config.filters), build_families(config.filters)

    def every_family() -> None:
        _, signals, texts = judge_families(docs, families)
        measured_rows(docs, texts, signals)

    sequential = best_seconds(lambda: apply_filters(docs, filters))
    every = best_seconds(every_family)

    def size(folder: Path) -> int:
        return sum(path.stat().st_size for path in folder.glob("*.parquet"))

    parts = size(layout.clean) + size(layout.rejected)
    print(
        f"filters in one process on {docs.num_rows} documents: {sequential:.2f} s in sequence "
        f"on the documents kept so far, {every:.2f} s measuring every family on every one "
        f"({every / sequential - 1:+.0%})\n"
        f"signals parts: {size(layout.signals) / 1e6:.1f} MB, against "
        f"{parts / 1e6:.1f} MB of clean and rejected parts"
    )


def best_seconds(function: Callable[[], object], repeat: int = 3) -> float:
    """The least seconds of `repeat` calls of `function`."""
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return min(seconds)


if __name__ == "__main__":
    main()
