"""How `corpusmill run` scales: the whole pipeline on generated crawls of 1x, 10x and 100x the HTML.

Each scale is a crawl of `--html-mb` times the scale MB of HTML (`benchmarks/crawl.py`; 100x the
default 50 MB is about 5 GB of HTML, and as much disk again for the run's output), run as
`benchmarks/run.py` runs one: a fresh local cluster of `--workers` processes, the same
`read.split_bytes` at every scale (so a bigger crawl has more tasks of the same size), one
tokenizer trained once on the 1x crawl (and cached), and the high-water mark of every process
read from /proc. Per stage it prints the MB/s of HTML per core (HTML MB / stage seconds /
workers) and the largest worker RSS while the stage ran; per process its peak RSS; each beside
its ratio to 1x.

    python benchmarks/scale.py [--html-mb 50] [--scales 1 10 100] [--workers 2] [--root DIR]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from crawl import DEFAULT_ROOT, build_crawl
from run import TASKS_PER_WORKER, Measured, bench_tokenizer, measure_run

from corpusmill.pipeline.readers import ReadConfig

# The stages a run's stats hold, in the order they run; each row says where a run skipped one.
STAGES = ("clean", "dedup", "dataset", "tokenize")

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
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("benchmarks").setLevel(logging.INFO)

    scales = sorted(set(args.scales) | {1})
    crawls = [build_crawl(args.html_mb * scale, args.root) for scale in scales]
    stored = sum(os.path.getsize(warc) for warc in crawls[0].warcs)
    read = ReadConfig(split_bytes=math.ceil(stored / (args.workers * TASKS_PER_WORKER)))
    tokenizer, _ = bench_tokenizer(None, crawls[0], read, args.workers, args.root)
    load_before = os.getloadavg()[0]
    runs = []
    for scale, crawl in zip(scales, crawls, strict=True):
        runs.append(measure_run(crawl, tokenizer, read, args.workers, args.root))
        log.info("%dx: %.1f MB of HTML in %.1f s", scale, crawl.html_bytes / 1e6, runs[-1].wall)

    print(
        f"\n{args.workers} workers; read.split_bytes {read.split_bytes / 1e6:.1f} MB; tokenizer "
        f"{tokenizer}; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
        "(other work on the machine skews every row)"
    )
    for scale, run in zip(scales, runs, strict=True):
        print(
            f"{scale}x: {run.crawl.html_bytes / 1e6:.1f} MB of HTML in {len(run.crawl.warcs)} "
            f"WARC files, {run.stats['clean']['tasks']} clean tasks, {run.wall:.1f} s wall"
        )
    print()
    print_table("MB/s of HTML per core", scales, runs, _speeds(args.workers))
    print()
    print_table("largest worker RSS, MB", scales, runs, _stage_memory)
    print()
    print_table("peak RSS, MB", scales, runs, lambda run: dict(run.peak_mb))


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
    print(f"{title:<22}" + "".join(f"{name:>10}" for name in names + ratios))
    for row in dict.fromkeys(key for column in columns for key in column):
        cells = [column.get(row) for column in columns]
        first = cells[0]
        shares = [cell / first if cell is not None and first else None for cell in cells[1:]]
        print(
            f"{row:<22}"
            + "".join(_cell(cell, ".1f") for cell in cells)
            + "".join(_cell(share, ".2f") for share in shares)
        )


def _speeds(workers: int) -> Callable[[Measured], dict[str, float | None]]:
    """MB/s of the crawl's HTML per core of each stage of a run, and of the whole run's wall time
    (cluster start-up included)."""

    def speeds(run: Measured) -> dict[str, float | None]:
        seconds = {stage: run.stats[stage].get("seconds") for stage in STAGES if stage in run.stats}
        seconds["whole run, wall"] = run.wall
        html_mb = run.crawl.html_bytes / 1e6
        return {name: html_mb / s / workers if s else None for name, s in seconds.items()}

    return speeds


def _stage_memory(run: Measured) -> dict[str, float | None]:
    """The largest RSS of any worker while each stage ran (the stages `benchmarks/run.py` times)."""
    return {stage: run.stage_worker_mb.get(stage) for stage in STAGES if stage in run.stats}


def _cell(value: float | None, spec: str) -> str:
    return f"{value:>10{spec}}" if value is not None else f"{'-':>10}"


if __name__ == "__main__":
    main()
