"""Clean-stage throughput on a benchmark crawl, next to the raw extractor and datatrove.

Everything is measured in one run on the same pages: the HTML responses of the crawl that
`benchmarks/crawl.py` builds, generated (pages dressed in the markup of real sites: a median page
of 96 KB with about 1,000 elements, main text 15 % of the HTML bytes) or, with `--pages DIR`, from
a folder of saved real pages. Rows:

- raw extractor: fastwarc reads every HTML response and resiliparse's own calls decode it
  (`bytes_to_str` with the HTTP charset, else `detect_encoding`'s guess) and extract it
  (`extract_plain_text` with the pipeline's ExtractConfig options: main content only), in this
  process; the reference the stage is held to;
- corpusmill `html_to_text`: the pipeline's decoding (BOM, HTTP, meta, then a guess) and
  extraction, same pages, same process;
- corpusmill clean stage: `run_clean` on a local Dask cluster of `--workers` processes, its inputs
  split as the readers plan them by default (`split_size`), timed by the stage itself and by the
  wall clock including cluster start-up and shutdown; its note gives the tasks and the workers'
  busy fraction (the seconds its tasks computed over the stage's seconds times the workers);
- datatrove's equivalent: WarcReader, Trafilatura, GopherRepetitionFilter, GopherQualityFilter on a
  LocalPipelineExecutor with as many workers and tasks, when datatrove is installed.

MB/s are of HTML pages and per core: a row's HTML MB / seconds / processes. MB/CPU-s are HTML MB
per CPU-second of the processes doing the work: this one for the single-process rows; the client
and the workers from the stage's start to its end for the stage (from /proc); this process and its
descendants for the wall-clock row and datatrove. On a machine shared with other work, compare CPU
seconds rather than wall seconds, and rows of one run. Best of 2 runs on a
2-core machine, on the generated 111.6 MB crawl (`--html-mb 100`, 1168 pages) and on 8 copies of
the 106 real pages of more than 10 KB in trafilatura 0.9.0's source archive (`--pages`, see
benchmarks/crawl.py; 101.0 MB, 848 pages, median 80 KB, main text 6.9 % of the HTML):

| pipeline                                | generated MB/s/core | vs raw | real MB/s/core | vs raw |
|-----------------------------------------|---------------------|--------|----------------|--------|
| raw extractor: fastwarc + resiliparse   |               59.79 |   100% |          78.36 |   100% |
| corpusmill html_to_text, 1 process      |               60.52 |   101% |          86.42 |   110% |
| corpusmill clean stage (stage seconds)  |               24.79 |    41% |          39.20 |    50% |
| corpusmill clean stage (wall, cluster)  |               17.12 |    29% |          22.13 |    28% |
| datatrove: Trafilatura + Gopher filters |                1.94 |     3% |           3.26 |     4% |

The stage is 12.8x (generated) and 12.0x (real) datatrove's speed per core, short of its goals of
60 % of the raw extractor and 20x datatrove. Per 100 MB of real HTML in one process, reading and
extraction take 1.3 s (resiliparse 0.93, gzip 0.20), language id 0.28, normalization and the
filters about 0.4, and the Parquet parts 0.1; Dask adds about a tenth. The raw extractor's own
speed varies by a tenth from run to run on this machine (62.2 and 85.9 MB/s in an earlier run).

    python benchmarks/clean.py [--html-mb 100] [--pages DIR] [--files N] [--workers 2]
                               [--skip-datatrove]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import logging
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from crawl import DEFAULT_ROOT, Crawl, add_files_flag, add_pages_flag, crawl_for, html_pages_of
from distributed import get_task_stream
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding
from run import DATATROVE_INSTALL, process_cpu_seconds, tree_cpu_seconds

from corpusmill.pipeline.clean import run_clean
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import RunConfig
from corpusmill.pipeline.extract import ExtractConfig, html_to_text
from corpusmill.pipeline.readers import ReadConfig, discover_inputs, split_size


@dataclasses.dataclass(frozen=True)
class Row:
    """One measured pipeline: its seconds over the crawl's HTML on `processes` processes, and the
    CPU seconds those processes spent."""

    name: str
    seconds: float
    processes: int
    cpu: float
    note: str = ""


def main() -> None:
    """Build or reuse the crawl, measure every pipeline on it `--repeat` times, print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html-mb", type=int, default=100, help="least MB of HTML in the crawl")
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes of the parallel pipelines"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timing repetitions (best is kept)")
    parser.add_argument("--skip-datatrove", action="store_true", help="do not run datatrove")
    add_pages_flag(parser)
    add_files_flag(parser)
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help="cache folder of benchmark crawls"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("benchmarks").setLevel(logging.INFO)

    crawl = crawl_for(args.html_mb, args.pages, args.root, args.files)
    stored = sum(os.path.getsize(warc) for warc in crawl.warcs)
    # The split size the readers plan by default, named so that the stage groups its tasks by it.
    split_bytes = split_size(discover_inputs(crawl.warcs, ReadConfig()), ReadConfig())
    with_datatrove = not args.skip_datatrove and importlib.util.find_spec("datatrove") is not None
    load_before = os.getloadavg()[0]
    runs = []
    for _ in range(args.repeat):
        rows, text_bytes, sizes = measure_single_process(crawl)
        clean, tasks = measure_clean(crawl, args.workers, split_bytes, args.root)
        rows += clean
        if with_datatrove:
            # As many tasks as corpusmill's, up to one per file: datatrove's reader shards by file.
            rows.append(measure_datatrove(crawl, args.workers, min(tasks, len(crawl.warcs))))
        runs.append(rows)
    best = [min(same, key=lambda row: row.seconds) for same in zip(*runs, strict=True)]

    mb = crawl.html_bytes / 1e6
    print(
        f"\ncrawl {crawl.folder}: {crawl.source}, {len(crawl.warcs)} WARC "
        f"files, {stored / 1e6:.1f} MB stored\n{crawl.html_pages} HTML pages: {mb:.1f} MB of HTML "
        f"(median page {statistics.median(sizes) / 1e3:.0f} KB), {text_bytes / 1e6:.1f} MB of main "
        f"text (resiliparse), {text_bytes / crawl.html_bytes:.1%} of the HTML\n"
        f"{args.workers} workers; corpusmill read.split_bytes {split_bytes / 1e6:.1f} MB; "
        f"best of {args.repeat} runs; load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after (other work on the machine skews the parallel rows)\n"
    )
    print_table(best, mb, crawl.html_pages)
    for row in best:
        if row.note:
            print(f"{row.name}: {row.note}")
    if args.skip_datatrove:
        print("datatrove: skipped (--skip-datatrove)")
    elif not with_datatrove:
        print(f"datatrove: not installed; to compare, {DATATROVE_INSTALL}")


def measure_single_process(crawl: Crawl) -> tuple[list[Row], int, list[int]]:
    """Time reading alone, the raw extractor and corpusmill's html_to_text over every HTML page;
    also return the extracted text's bytes and the page sizes."""
    options = dataclasses.asdict(ExtractConfig())
    config = ExtractConfig()

    def raw(body: bytes, http_charset: str | None) -> int:
        html = bytes_to_str(body, http_charset or detect_encoding(body))
        return len(extract_plain_text(html, **options).encode())

    def corpusmill(body: bytes, charset: str | None) -> int:
        return len(html_to_text(body, charset, config).text.encode())

    sizes: list[int] = []
    read, _ = _timed(lambda: sizes.extend(len(body) for body, _ in _pages(crawl)))
    raw_extractor, text_bytes = _timed(lambda: sum(raw(*page) for page in _pages(crawl)))
    ours, _ = _timed(lambda: sum(corpusmill(*page) for page in _pages(crawl)))
    rows = [
        Row(name, seconds, 1, cpu)
        for name, (seconds, cpu) in (
            ("read only: fastwarc, HTTP, gzip", read),
            ("raw extractor: fastwarc + resiliparse", raw_extractor),
            ("corpusmill html_to_text, 1 process", ours),
        )
    ]
    return rows, text_bytes, sizes


def measure_clean(
    crawl: Crawl, workers: int, split_bytes: int, root: Path
) -> tuple[list[Row], int]:
    """Run the clean stage on a fresh local cluster: rows for the stage's own time (CPU seconds:
    the client's and the workers', from /proc at the stage's start and end) and for the wall time
    with cluster start-up and shutdown (this process's and its descendants'), and the stage's task
    count. The workers' busy fraction is the seconds their tasks computed over the stage's seconds
    times the workers."""
    out = Path(tempfile.mkdtemp(prefix="clean-run-", dir=root))
    config = RunConfig(
        inputs=crawl.warcs, out=str(out), workers=workers, read=ReadConfig(split_bytes=split_bytes)
    )
    try:
        started, cpu_before = time.perf_counter(), tree_cpu_seconds(os.getpid())
        with dask_client("", workers) as client:
            processes = {"client": os.getpid(), **client.run(os.getpid)}
            before = process_cpu_seconds(processes)
            with get_task_stream(client) as stream:
                stats = run_clean(config, client, discover_inputs(config.inputs, config.read))
            after = process_cpu_seconds(processes)
            peaks = client.run(_peak_rss_mb)
        wall = time.perf_counter() - started
        cpu = tree_cpu_seconds(os.getpid()) - cpu_before
    finally:
        shutil.rmtree(out, ignore_errors=True)
    computing = sum(
        part["stop"] - part["start"]
        for task in stream.data
        for part in task["startstops"]
        if part["action"] == "compute"
    )
    note = (
        f"{stats['tasks']} tasks, workers busy {computing / (stats['seconds'] * workers):.0%}, "
        f"{stats['read']['docs']} records read, {stats['kept']['docs']} "
        "documents kept; peak RSS per worker "
        + ", ".join(f"{mb:.0f} MB" for mb in sorted(peaks.values()))
    )
    stage_cpu = sum(after[name] - before[name] for name in before.keys() & after.keys())
    rows = [
        Row("corpusmill clean stage: stage seconds", stats["seconds"], workers, stage_cpu, note),
        Row("corpusmill clean stage: wall, with cluster", wall, workers, cpu),
    ]
    return rows, stats["tasks"]


def measure_datatrove(crawl: Crawl, workers: int, tasks: int) -> Row:
    """datatrove's WarcReader -> Trafilatura -> Gopher repetition -> Gopher quality."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.readers import WarcReader

    with tempfile.TemporaryDirectory(prefix="datatrove-logs-", dir=crawl.folder) as logs:
        executor = LocalPipelineExecutor(
            pipeline=[
                WarcReader(crawl.folder, glob_pattern=crawl.glob),
                # datatrove's defaults, as in its FineWeb example. Its English word tokenizer is a
                # blank spaCy pipeline, which downloads nothing.
                Trafilatura(favour_precision=True),
                GopherRepetitionFilter(),
                GopherQualityFilter(),
            ],
            tasks=tasks,
            workers=workers,
            logging_dir=logs,
        )
        cpu_before = tree_cpu_seconds(os.getpid())
        (seconds, _), _ = _timed(executor.run)
        cpu = tree_cpu_seconds(os.getpid()) - cpu_before
    return Row(
        "datatrove: Trafilatura + Gopher filters",
        seconds,
        workers,
        cpu,
        f"{tasks} tasks (logs on stderr)",
    )


def print_table(rows: list[Row], mb: float, pages: int) -> None:
    """MB/s and docs/s per core of each row, MB per CPU-second, and ratios to the raw extractor
    and to datatrove."""

    def per_core(row: Row) -> float:
        return mb / row.seconds / row.processes

    raw = next(per_core(row) for row in rows if row.name.startswith("raw extractor"))
    datatrove = next((per_core(row) for row in rows if row.name.startswith("datatrove")), None)
    print(
        f"{'pipeline':<44} {'procs':>5} {'seconds':>8} {'MB/s/core':>10} {'docs/s/core':>12} "
        f"{'CPU s':>7} {'MB/CPU-s':>9} {'vs raw':>7} {'vs datatrove':>13}"
    )
    for row in rows:
        speed = per_core(row)
        versus = f"{speed / datatrove:>12.1f}x" if datatrove else f"{'-':>13}"
        print(
            f"{row.name:<44} {row.processes:>5} {row.seconds:>8.2f} {speed:>10.2f} "
            f"{pages / row.seconds / row.processes:>12.1f} {row.cpu:>7.2f} {mb / row.cpu:>9.2f} "
            f"{speed / raw:>6.0%} {versus}"
        )


def _pages(crawl: Crawl) -> Iterator[tuple[bytes, str | None]]:
    """Every HTML page of the crawl, file after file."""
    for warc in crawl.warcs:
        yield from html_pages_of(Path(warc))


def _timed(work: Callable[[], object]) -> tuple[tuple[float, float], object]:
    """Seconds and CPU seconds of this process `work` took, and its result."""
    start, cpu = time.perf_counter(), time.process_time()
    result = work()
    return (time.perf_counter() - start, time.process_time() - cpu), result


def _peak_rss_mb() -> float:
    """This process's peak resident memory in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
