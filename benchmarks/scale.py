"""How `corpusmill run` scales: the whole pipeline on generated crawls of 1x, 10x and 100x the HTML.

Each scale is a crawl of `--html-mb` times the scale MB of HTML (`benchmarks/crawl.py`; 100x the
default 50 MB is about 5 GB of HTML in 1.25 GB of WARC files, and about as much disk again for the
run's output), measured as `benchmarks/run.py` measures a run: a fresh local cluster of
`--workers` processes, each stage's span with the CPU seconds of the client and every worker,
the load average, and the high-water mark of every process. Each scale runs in a process of its
own, so that the client's peak is that run's, not that of the crawls generated, the tokenizer
trained and the smaller scales run before it in one process. Every scale has the same
`read.split_bytes` (the 1x crawl's stored bytes over 4 tasks per worker), so a bigger crawl has
more tasks of the same size, not bigger ones, and encodes with one tokenizer trained once on the
1x crawl's deduplicated documents (and cached), so that every stage does the same work per byte.

Per stage it prints MB of HTML per CPU-second, the per-core throughput that holds best when other
work shares the machine (load still charges the idle cluster's 0.08 of a core for every second a
stage is slowed, see `benchmarks/run.py`); MB/s of HTML per core on the wall clock (HTML MB / stage
seconds / workers); the largest worker RSS while the stage ran; per process its peak RSS; each
beside its ratio to 1x. Each scale's own figures are printed as soon as it has run.

    python benchmarks/scale.py [--html-mb 50] [--scales 1 10 100] [--workers 2] [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from crawl import DEFAULT_ROOT, Crawl, build_crawl
from run import Measured, Span, describe, measure_run, print_spans

from corpusmill.pipeline.config import RunConfig
from corpusmill.pipeline.corpus import Corpus
from corpusmill.pipeline.readers import ReadConfig
from corpusmill.pipeline.run import run_pipeline
from corpusmill.tokenizer.config import TokenizerConfig
from corpusmill.tokenizer.train import save_tokenizer, train_tokenizer

# Tasks per worker that read.split_bytes is sized for on the 1x crawl, as in benchmarks/clean.py.
TASKS_PER_WORKER = 4

log = logging.getLogger("benchmarks.scale")


def main() -> None:
    """Build or reuse a crawl per scale and the tokenizer, run the pipeline on each crawl, print
    the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html-mb", type=int, default=50, help="least MB of HTML of the 1x crawl")
    parser.add_argument(
        "--scales", type=int, nargs="+", default=[1, 10, 100], help="crawl sizes, times 1x"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes of every run")
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help="cache folder of crawls and outputs"
    )
    args = parser.parse_args()
    configure_logging()

    scales = sorted(set(args.scales) | {1})
    crawls = [build_crawl(args.html_mb * scale, args.root) for scale in scales]
    stored = sum(os.path.getsize(warc) for warc in crawls[0].warcs)
    read = ReadConfig(split_bytes=math.ceil(stored / (args.workers * TASKS_PER_WORKER)))
    tokenizer = bench_tokenizer(crawls[0], read, args.workers, args.root)
    runs = []
    for scale, crawl in zip(scales, crawls, strict=True):
        config = RunConfig(
            inputs=crawl.warcs,
            out=str(Path(args.root) / "run" / Path(crawl.folder).name),
            workers=args.workers,
            read=read,
            tokenizer=TokenizerConfig(path=str(tokenizer)),
        )
        run = measure_apart(crawl, config)
        runs.append(run)
        # Each scale's figures as soon as it has run, so a long run stopped early keeps them.
        print(f"\n{scale}x: {describe(run)}")
        spans = run.stages | {"whole run": run.whole}
        print_spans(f"{scale}x", spans, crawl.html_bytes / 1e6, args.workers, flush=True)

    print(f"\nread.split_bytes {read.split_bytes / 1e6:.1f} MB; tokenizer {tokenizer}")
    print()
    print_table("MB of HTML per CPU-s", scales, runs, _throughput(lambda span: span.cpu_seconds))
    print()
    wall = _throughput(lambda span: span.seconds * args.workers)
    print_table("MB/s of HTML per core", scales, runs, wall)
    print()
    print_table("largest worker RSS, MB", scales, runs, lambda run: dict(run.stage_worker_mb))
    print()
    print_table("peak RSS, MB", scales, runs, lambda run: dict(run.peak_mb))


def configure_logging() -> None:
    """The benchmark's progress lines, and only warnings of the pipeline."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("benchmarks").setLevel(logging.INFO)


def measure_apart(crawl: Crawl, config: RunConfig) -> Measured:
    """`measure_run` in a fresh process, whose memory holds nothing but the run."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, initializer=configure_logging) as pool:
        return pool.submit(measure_run, crawl, config).result()


def bench_tokenizer(crawl: Crawl, read: ReadConfig, workers: int, root: Path) -> Path:
    """The tokenizer every scale encodes with: trained once on the deduplicated documents of a
    run of `crawl` without the tokenize stage, and cached beside the crawls with its training
    seconds."""
    config = TokenizerConfig(train=True)
    path = Path(root) / f"tokenizer-{Path(crawl.folder).name}-{config.vocab_size}.json"
    record = path.with_suffix(".seconds.json")
    if path.exists() and record.exists():
        return path
    out = Path(root) / "run" / f"tokenizer-source-{Path(crawl.folder).name}"
    shutil.rmtree(out, ignore_errors=True)
    log.info("training the benchmark tokenizer on the deduplicated documents of %s", crawl.folder)
    run_pipeline(RunConfig(inputs=crawl.warcs, out=str(out), workers=workers, read=read))
    started = time.perf_counter()
    tokenizer, _ = train_tokenizer(Corpus([str(out)]), config)
    seconds = time.perf_counter() - started
    save_tokenizer(tokenizer, path)
    record.write_text(json.dumps({"seconds": round(seconds, 3)}) + "\n")
    return path


def print_table(
    title: str,
    scales: Sequence[int],
    runs: Sequence[Measured],
    values: Callable[[Measured], dict[str, float | None]],
) -> None:
    """One row per key of `values` (a stage or a process): its value at each scale, then the
    ratio of each scale's value to 1x's."""
    columns = [values(run) for run in runs]
    names = [f"{scale}x" for scale in scales]
    ratios = [f"{name}/1x" for name in names[1:]]
    print(f"{title:<24}" + "".join(f"{name:>10}" for name in names + ratios))
    for row in dict.fromkeys(key for column in columns for key in column):
        cells = [column.get(row) for column in columns]
        first = cells[0]
        shares = [cell / first if cell is not None and first else None for cell in cells[1:]]
        print(
            f"{row:<24}"
            + "".join(_cell(cell, ".1f") for cell in cells)
            + "".join(_cell(share, ".2f") for share in shares)
        )


def _throughput(cost: Callable[[Span], float]) -> Callable[[Measured], dict[str, float | None]]:
    """MB of the crawl's HTML per unit of `cost` of each stage of a run and of the whole run
    (cluster start-up included)."""

    def throughput(run: Measured) -> dict[str, float | None]:
        html_mb = run.crawl.html_bytes / 1e6
        spans = run.stages | {"whole run": run.whole}
        return {name: html_mb / cost(span) if cost(span) else None for name, span in spans.items()}

    return throughput


def _cell(value: float | None, spec: str) -> str:
    return f"{value:>10{spec}}" if value is not None else f"{'-':>10}"


if __name__ == "__main__":
    main()
