"""Refilter against the clean stage: new thresholds decided from stored signals, timed.

The clean stage runs on a crawl of `benchmarks/crawl.py` (generated, or of saved pages with
`--pages`) on a local Dask cluster of `--workers` processes (its config written into the run
folder, as `corpusmill run` does); then `refilter_run` decides it again with other thresholds of
every built-in family on the same cluster. Both are timed as their stages report it (the seconds
of their Dask tasks, without cluster start-up), with their tasks' compute seconds, `--repeat`
times on one cluster. Then, in this process, every clean task and every part refiltered run in
turn, `--repeat` times: on a shared machine the two see the same load, and no scheduling.

The cost the signals add to the clean stage is measured apart, in this process, on the documents
of the signals parts (every document that reached the filters): the filters run as before this
design (each family on the documents the families before it kept, `apply_filters`) against every
family measuring every document and the rows of the signals part made (`judge_families`,
`measured_rows`), and the bytes of the signals parts against those of the clean and rejected
parts.

On a 2-core machine under a load average of 24 to 31 from other work, 2 workers, new thresholds
of every family changing the verdicts of every part (README, "Signals and refilter", has the
table): on the generated crawl of 55.6 MB of HTML (584 pages, 9 parts) the clean stage took 9.7
to 12.9 s and refilter 0.40 to 0.64 s over 3 repeats, 20x to 28x (10x to 14x before counting
rejections with numpy), and 18x to 42x in one process; a generated crawl of 503.1 MB (64 parts),
cleaned once on the cluster and refiltered four times, alternating new and old thresholds, took
558 s against 5.2 to 12.8 s, 44x to 107x. A part costs refilter a time
of its own whatever its size (at that load: 13 ms to read its signals, 12 ms to write two files,
4 ms of renames), which the 65 documents of the 50 MB crawl's parts do not pay back.
Measuring every family on every document took -23 % to +50 % of the filters' time in sequence
(the noise of this machine); the signals parts take 2.7 MB against 2.5 MB of clean and rejected
parts on the generated crawl, 2.6 MB against 1.7 MB on the real pages.

    python benchmarks/refilter.py [--html-mb 50] [--pages DIR] [--splits 64] [--workers 2]
        [--repeat 3] [--root out/bench]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
from crawl import DEFAULT_ROOT, add_pages_flag, crawl_for
from distributed import Client, get_task_stream

from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.clean import clean_task, clean_tasks, measured_rows, run_clean
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import RunConfig, config_to_toml, load_config
from corpusmill.pipeline.filters import apply_filters, build_families, build_filters, judge_families
from corpusmill.pipeline.readers import discover_inputs
from corpusmill.pipeline.refilter import refilter_part, refilter_run
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

[filters.compression]
max_ratio = 6.0

[filters.c4]
min_sentences = 3

[filters.fineweb]
line_punct_thr = 0.2
"""


def main() -> None:
    """Build or reuse the crawl, then `--repeat` times on one cluster: clean it, refilter it;
    print each repeat's times and ratio, then the signals' cost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html-mb", type=int, default=50, help="least MB of HTML in the crawl")
    add_pages_flag(parser)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--splits", type=int, default=64, help="read.splits: the parts the crawl is cut into"
    )
    parser.add_argument("--repeat", type=int, default=3, help="clean and refilter this often")
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help="cache folder of benchmark crawls"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    crawl = crawl_for(args.html_mb, args.pages, args.root)
    print(
        f"crawl {crawl.folder}: {crawl.html_pages} pages, {crawl.html_bytes / 1e6:.1f} MB of "
        f"HTML; {args.workers} workers"
    )
    print("repeat  parts  clean s  refilter s  ratio  clean compute s  refilter compute s  ratio")
    with dask_client("", args.workers) as client:
        for repeat in range(args.repeat):
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
                clean, refiltered, layout = clean_and_refilter(config, client)
                print(
                    f"{repeat + 1:>6}  {clean.stats['tasks']:>5}  {clean.seconds:>7.3f}  "
                    f"{refiltered.seconds:>10.3f}  {clean.seconds / refiltered.seconds:>4.0f}x  "
                    f"{clean.computing:>15.3f}  {refiltered.computing:>18.3f}  "
                    f"{clean.computing / refiltered.computing:>4.0f}x"
                )
                if repeat == args.repeat - 1:
                    print_outcome(clean.stats, refiltered.stats)
                    print_in_one_process(config, layout, args.repeat)
                    print_signals_cost(config, layout)
            finally:
                shutil.rmtree(out, ignore_errors=True)


class Timed(NamedTuple):
    """A stage's stats, its seconds as it reports them and its tasks' compute seconds."""

    stats: dict[str, Any]
    seconds: float
    computing: float


def clean_and_refilter(config: RunConfig, client: Client) -> tuple[Timed, Timed, RunLayout]:
    """Clean the config's inputs into its folder, write its config there as `corpusmill run`
    does, then refilter it with NEW_THRESHOLDS; both timed."""
    layout = RunLayout(Path(config.out))
    with get_task_stream(client) as clean_stream:
        clean = run_clean(config, client, discover_inputs(config.inputs, config.read))
    layout.config.write_text(config_to_toml(config))
    thresholds = layout.root.parent / f"{layout.root.name}-thresholds.toml"
    thresholds.write_text(NEW_THRESHOLDS)
    before = markers(layout)
    with get_task_stream(client) as refilter_stream:
        refiltered = refilter_run(layout.root, [thresholds], client=client)
    thresholds.unlink()
    after = markers(layout)
    refiltered["changed"] = sum(before[index] != after[index] for index in before)
    return (
        Timed(clean, clean["seconds"], computing(clean_stream)),
        Timed(refiltered, refiltered["seconds"], computing(refilter_stream)),
        layout,
    )


def print_outcome(clean: dict[str, Any], refiltered: dict[str, Any]) -> None:
    """The documents each kept, and the parts refilter rewrote."""
    print(
        f"clean kept {clean['kept']['docs']} documents, refilter {refiltered['kept']['docs']}; "
        f"{refiltered['changed']} of {refiltered['tasks']} parts rewritten (their verdicts "
        "changed)"
    )


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


def print_in_one_process(config: RunConfig, layout: RunLayout, repeat: int) -> None:
    """Every clean task, then every part refiltered to NEW_THRESHOLDS, in this process, `repeat`
    times in turn: on a machine shared with other work, the two see the same load, and no
    cluster's scheduling is timed."""
    tasks = clean_tasks(discover_inputs(config.inputs, config.read), config.read)
    thresholds = layout.root.parent / f"{layout.root.name}-thresholds.toml"
    thresholds.write_text(NEW_THRESHOLDS)
    new = load_config([layout.config, thresholds])
    thresholds.unlink()
    print("in one process: repeat  clean s  refilter s  ratio")
    for index in range(repeat):
        started = time.perf_counter()
        for task in tasks:
            clean_task(task, config, layout)
        cleaning = time.perf_counter() - started
        started = time.perf_counter()
        for task in tasks:
            refilter_part(task.index, new, layout)
        refiltering = time.perf_counter() - started
        print(
            f"{'':>15}{index + 1:>6}  {cleaning:>7.3f}  {refiltering:>10.3f}  "
            f"{cleaning / refiltering:>4.0f}x"
        )


def print_signals_cost(config: RunConfig, layout: RunLayout) -> None:
    """The filters' time in sequence against every family on every document, in this process,
    and the bytes of the signals parts against the clean and rejected parts'."""
    measured = pa.concat_tables(
        pq.read_table(layout.signals_part(index)) for index in layout.clean_parts()
    )
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
