"""`corpusmill run` (clean, dedup, tokenize) end to end and at scale, and datatrove's equivalent.

Scale: the whole pipeline on a web-weight crawl (`benchmarks/crawl.py`) and on one `--scale` times
bigger, each through `run_pipeline` on a fresh local cluster of `--workers` processes, with the same
`read.split_bytes` (the 1x crawl's stored bytes over 4 tasks per worker), so the bigger crawl has
more tasks of the same size, not bigger ones. Both runs encode with one tokenizer (`--tokenizer`, or
a BPE trained once on the 1x crawl's deduplicated documents and cached), so tokenizer training is
timed on its own line, not inside the runs. Peak RSS is the kernel's high-water mark (VmHWM, reset
before each run) of the client process (which also hosts the scheduler and the workers' nannies) and
of every worker process; a thread polls /proc ten times a second, and a mark that rose between two
polls is a peak in that interval, which gives each stage's largest worker RSS. MB/s are of the
crawl's HTML per core (HTML MB / stage seconds / workers); docs/s are of the documents the stage
reads.

End to end: datatrove's WarcReader, Trafilatura, GopherRepetitionFilter, GopherQualityFilter and
JsonlWriter, then MinHash dedup in its four stages, then DocumentTokenizer with the same
tokenizer.json, each a LocalPipelineExecutor of as many workers, when datatrove is installed.

    python benchmarks/run.py [--html-mb 50] [--scale 10] [--workers 2] [--skip-datatrove]
                             [--tokenizer PATH]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawl import DEFAULT_ROOT, Crawl, build_crawl

from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import RunConfig
from corpusmill.pipeline.corpus import Corpus
from corpusmill.pipeline.readers import ReadConfig
from corpusmill.pipeline.run import run_pipeline
from corpusmill.tokenizer.config import TokenizerConfig
from corpusmill.tokenizer.train import save_tokenizer, train_tokenizer

DATATROVE_INSTALL = "pip install 'datatrove[io,processing]' spacy"
STAGES = ("clean", "dedup", "tokenize")
# Tasks per worker that read.split_bytes is sized for on the 1x crawl, as in benchmarks/clean.py.
TASKS_PER_WORKER = 4
POLL_SECONDS = 0.1

log = logging.getLogger("benchmarks.run")


@dataclass
class Measured:
    """One pipeline run: its stats, wall seconds with the cluster, and memory per process."""

    crawl: Crawl
    stats: dict[str, Any]
    wall: float
    peak_mb: dict[str, float]
    stage_worker_mb: dict[str, float]


def main() -> None:
    """Build or reuse the crawls and the tokenizer, run the pipeline on each crawl, print tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html-mb", type=int, default=50, help="least MB of HTML of the 1x crawl")
    parser.add_argument(
        "--scale",
        type=int,
        default=10,
        help="size of the big crawl, times 1x; 1 runs the 1x crawl only (with datatrove's)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes of every run")
    parser.add_argument("--skip-datatrove", action="store_true", help="do not run datatrove")
    parser.add_argument(
        "--tokenizer", type=Path, help="tokenizer.json to encode with; default: train on 1x"
    )
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help="cache folder of crawls and outputs"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("benchmarks").setLevel(logging.INFO)

    small = build_crawl(args.html_mb, args.root)
    crawls = (
        [small] if args.scale == 1 else [small, build_crawl(args.html_mb * args.scale, args.root)]
    )
    split_bytes = math.ceil(_stored(small) / (args.workers * TASKS_PER_WORKER))
    read = ReadConfig(split_bytes=split_bytes)
    tokenizer, train_seconds = bench_tokenizer(args.tokenizer, small, read, args.workers, args.root)
    load_before = os.getloadavg()[0]
    runs = [measure_run(crawl, tokenizer, read, args.workers, args.root) for crawl in crawls]

    print(
        f"\n{args.workers} workers; read.split_bytes {split_bytes / 1e6:.1f} MB; tokenizer "
        f"{tokenizer} ({_training_note(train_seconds)}); load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after (other work on the machine skews every row)"
    )
    for run, name in zip(runs, ("1x", f"{args.scale}x")[: len(runs)], strict=True):
        print(f"{name}: {_describe(run)}")
    if len(runs) == 2:
        print()
        print_stage_table(runs, args.workers, args.scale)
        print()
        print_memory_table(runs, args.scale)

    if args.skip_datatrove:
        print("\ndatatrove: skipped (--skip-datatrove)")
    elif importlib.util.find_spec("datatrove") is None:
        print(f"\ndatatrove: not installed; to compare, {DATATROVE_INSTALL}")
    else:
        steps, kept = measure_datatrove(small, tokenizer, args.workers, args.root)
        print()
        print_versus_datatrove(runs[0], steps)
        dedup = runs[0].stats["dedup"]
        print(
            f"documents kept: datatrove {kept['filtered']} after its filters, "
            f"{kept['deduplicated']} after MinHash; corpusmill {dedup['docs']} after clean, "
            f"{dedup['kept']['docs']} after dedup (exact and near)"
        )


def bench_tokenizer(
    given: Path | None, crawl: Crawl, read: ReadConfig, workers: int, root: Path
) -> tuple[Path, float | None]:
    """The tokenizer both runs encode with, and its training seconds (None when given).

    Trained once on the deduplicated documents of a run of `crawl` without the tokenize stage,
    and cached beside the crawls with its training seconds.
    """
    if given:
        return given.resolve(), None
    config = TokenizerConfig(train=True)
    path = Path(root) / f"tokenizer-{Path(crawl.folder).name}-{config.vocab_size}.json"
    record = path.with_suffix(".seconds.json")
    if path.exists() and record.exists():
        return path, json.loads(record.read_text())["seconds"]
    out = Path(root) / "run" / f"tokenizer-source-{Path(crawl.folder).name}"
    shutil.rmtree(out, ignore_errors=True)
    log.info("training the benchmark tokenizer on the deduplicated documents of %s", crawl.folder)
    run_pipeline(RunConfig(inputs=crawl.warcs, out=str(out), workers=workers, read=read))
    started = time.perf_counter()
    tokenizer, _ = train_tokenizer(Corpus([str(out)]), config)
    seconds = time.perf_counter() - started
    save_tokenizer(tokenizer, path)
    record.write_text(json.dumps({"seconds": round(seconds, 3)}) + "\n")
    return path, seconds


def measure_run(
    crawl: Crawl, tokenizer: Path, read: ReadConfig, workers: int, root: Path
) -> Measured:
    """Run the whole pipeline on `crawl` into a fresh folder on a fresh local cluster."""
    out = Path(root) / "run" / Path(crawl.folder).name
    shutil.rmtree(out, ignore_errors=True)
    config = RunConfig(
        inputs=crawl.warcs,
        out=str(out),
        workers=workers,
        read=read,
        tokenizer=TokenizerConfig(path=str(tokenizer)),
    )
    log.info("running the pipeline on %s", crawl.folder)
    started = time.perf_counter()
    with dask_client("", workers) as client:
        processes = {"client and scheduler": os.getpid()}
        worker_pids = sorted(client.run(os.getpid).values())
        processes |= {f"worker {i + 1}": pid for i, pid in enumerate(worker_pids)}
        with sampled_memory(processes) as sampler:
            run_started = time.monotonic()
            stats = run_pipeline(config, client=client)
    wall = time.perf_counter() - started
    windows = _stage_windows(stats, run_started)
    stage_worker_mb = {
        stage: sampler.max_rss_mb([name for name in processes if name.startswith("worker")], *span)
        for stage, span in windows.items()
    }
    return Measured(crawl, stats, wall, _ranked_workers(sampler.peak_mb()), stage_worker_mb)


class MemorySampler:
    """Peak and sampled RSS of named processes, read from /proc (Linux)."""

    def __init__(self, processes: Mapping[str, int]) -> None:
        self.processes = dict(processes)
        self.samples: list[tuple[float, str, float]] = []
        self.hwm_mb: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self) -> None:
        for pid in self.processes.values():
            # Writing 5 resets the high-water mark, so earlier work in the process does not count.
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._read()

    def peak_mb(self) -> dict[str, float]:
        """Each process's high-water mark over the run, or its largest sample if it exited."""
        return {
            name: max(self.hwm_mb.get(name, 0.0), self.max_rss_mb([name], 0, math.inf))
            for name in self.processes
        }

    def max_rss_mb(self, names: list[str], start: float, stop: float) -> float:
        """The largest RSS of any of `names` between two monotonic times (to a poll's interval)."""
        wanted = set(names)
        return max(
            (mb for at, name, mb in self.samples if name in wanted and start <= at <= stop),
            default=0.0,
        )

    def _poll(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._read()

    def _read(self) -> None:
        now = time.monotonic()
        for name, pid in self.processes.items():
            status = _proc_status(pid)
            if status:
                # A risen high-water mark is a peak since the last poll, which RSS may have missed.
                risen = status["VmHWM"] > self.hwm_mb.get(name, 0.0)
                self.samples.append((now, name, status["VmHWM" if risen else "VmRSS"]))
                self.hwm_mb[name] = status["VmHWM"]


@contextmanager
def sampled_memory(processes: Mapping[str, int]) -> Iterator[MemorySampler]:
    """Sample the memory of `processes` while the block runs."""
    sampler = MemorySampler(processes)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()


def measure_datatrove(
    crawl: Crawl, tokenizer: Path, workers: int, root: Path
) -> tuple[dict[str, float], dict[str, int]]:
    """Seconds of each step of datatrove's equivalent pipeline on `crawl`, and the documents it
    kept after the filters and after MinHash dedup."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.tokens import DocumentTokenizer
    from datatrove.pipeline.writers import JsonlWriter

    out = Path(root) / "run" / f"datatrove-{Path(crawl.folder).name}"
    shutil.rmtree(out, ignore_errors=True)
    # One task per WARC file at most: datatrove's readers shard by file.
    tasks = min(len(crawl.warcs), workers * TASKS_PER_WORKER)
    minhash = MinhashConfig()  # datatrove's defaults: 5-grams, 14 buckets of 8 hashes
    steps: list[tuple[str, list[Any], int]] = [
        (
            "extract + Gopher filters",
            [
                WarcReader(crawl.folder, glob_pattern=crawl.glob),
                # As in datatrove's FineWeb example; its word tokenizer is a blank spaCy pipeline.
                Trafilatura(favour_precision=True),
                GopherRepetitionFilter(),
                GopherQualityFilter(),
                JsonlWriter(str(out / "filtered")),
            ],
            tasks,
        ),
        (
            "MinHash 1: signatures",
            [
                JsonlReader(str(out / "filtered")),
                MinhashDedupSignature(str(out / "signatures"), config=minhash),
            ],
            tasks,
        ),
        (
            "MinHash 2: buckets",
            [MinhashDedupBuckets(str(out / "signatures"), str(out / "buckets"), config=minhash)],
            minhash.num_buckets,
        ),
        (
            "MinHash 3: clusters",
            [MinhashDedupCluster(str(out / "buckets"), str(out / "clusters"), config=minhash)],
            1,
        ),
        (
            "MinHash 4: filter",
            [
                JsonlReader(str(out / "filtered")),
                MinhashDedupFilter(str(out / "clusters")),
                JsonlWriter(str(out / "deduplicated")),
            ],
            tasks,
        ),
        (
            "tokenize",
            [
                JsonlReader(str(out / "deduplicated")),
                DocumentTokenizer(
                    str(out / "tokens"),
                    tokenizer_name_or_path=str(tokenizer),
                    eos_token=TokenizerConfig().eos,
                ),
            ],
            tasks,
        ),
    ]
    seconds = {}
    for name, pipeline, step_tasks in steps:
        log.info("datatrove: %s", name)
        with tempfile.TemporaryDirectory(prefix="datatrove-logs-", dir=root) as logs:
            executor = LocalPipelineExecutor(
                pipeline=pipeline,
                tasks=step_tasks,
                workers=min(workers, step_tasks),
                logging_dir=logs,
            )
            seconds[name] = _timed(executor.run)
    kept = {folder: _jsonl_records(out / folder) for folder in ("filtered", "deduplicated")}
    return seconds, kept


def print_stage_table(runs: list[Measured], workers: int, scale: int) -> None:
    """Per stage, 1x and Nx: seconds, MB/s of HTML per core, docs/s, largest worker RSS."""
    small, big = runs
    n = f"{scale}x"
    print(
        f"{'stage':<22} {'1x s':>8} {n + ' s':>8} {'1x MB/s/core':>13} {n + ' MB/s/core':>13} "
        f"{'ratio':>6} {'1x docs/s':>10} {n + ' docs/s':>10} {'1x worker MB':>13} "
        f"{n + ' worker MB':>13} {'ratio':>6}"
    )
    rows = [(stage, lambda run, s=stage: run.stats[s]["seconds"], stage) for stage in STAGES]
    rows.append(("whole run, wall", lambda run: run.wall, None))
    for name, seconds_of, stage in rows:
        speed = [run.crawl.html_bytes / 1e6 / seconds_of(run) / workers for run in runs]
        docs = [_stage_docs(run.stats, stage) / seconds_of(run) for run in runs] if stage else None
        memory = [run.stage_worker_mb[stage] if stage else _worker_peak_mb(run) for run in runs]
        docs_cells = f"{docs[0]:>10.1f} {docs[1]:>10.1f}" if docs else f"{'-':>10} {'-':>10}"
        print(
            f"{name:<22} {seconds_of(small):>8.2f} {seconds_of(big):>8.2f} {speed[0]:>13.2f} "
            f"{speed[1]:>13.2f} {speed[1] / speed[0]:>6.2f} {docs_cells} {memory[0]:>13.0f} "
            f"{memory[1]:>13.0f} {memory[1] / memory[0]:>6.2f}"
        )


def print_memory_table(runs: list[Measured], scale: int) -> None:
    """Peak RSS of every process of the two runs and its ratio."""
    small, big = runs
    n = f"{scale}x"
    print(f"{'process (peak RSS)':<22} {'1x MB':>8} {n + ' MB':>8} {'ratio':>6}")
    # Workers are ranked by their peak, so each row compares the nth largest of both runs.
    for name in small.peak_mb:
        before, after = small.peak_mb[name], big.peak_mb.get(name, 0.0)
        print(f"{name:<22} {before:>8.0f} {after:>8.0f} {after / before:>6.2f}")


def print_versus_datatrove(run: Measured, steps: Mapping[str, float]) -> None:
    """datatrove's seconds per step beside corpusmill's per stage on one crawl, and the ratio."""
    ours = {stage: run.stats[stage]["seconds"] for stage in STAGES}
    total = sum(steps.values())
    mb = run.crawl.html_bytes / 1e6
    print(f"{'end to end on ' + Path(run.crawl.folder).name:<40} {'seconds':>8} {'MB/s':>7}")
    for name, seconds in steps.items():
        print(f"{'datatrove: ' + name:<40} {seconds:>8.2f} {mb / seconds:>7.2f}")
    print(f"{'datatrove: total':<40} {total:>8.2f} {mb / total:>7.2f}")
    for stage, seconds in ours.items():
        print(f"{'corpusmill: ' + stage:<40} {seconds:>8.2f} {mb / seconds:>7.2f}")
    print(f"{'corpusmill: whole run, wall':<40} {run.wall:>8.2f} {mb / run.wall:>7.2f}")
    print(
        f"corpusmill is {total / run.wall:.1f}x faster than datatrove end to end (wall, with "
        f"cluster start-up), {total / sum(ours.values()):.1f}x on the stages' own seconds; "
        "goal: 10x"
    )


def _stage_windows(stats: Mapping[str, Any], started: float) -> dict[str, tuple[float, float]]:
    """Monotonic (start, stop) of each stage, laid end to end from the run's start."""
    windows, at = {}, started
    for stage in STAGES:
        windows[stage] = (at, at + stats[stage]["seconds"])
        at = windows[stage][1]
    return windows


def _stage_docs(stats: Mapping[str, Any], stage: str) -> int:
    """The documents a stage reads: records for clean, kept documents for dedup and tokenize."""
    if stage == "clean":
        return stats["clean"]["read"]["docs"]
    if stage == "dedup":
        return stats["dedup"]["docs"]
    return stats["tokenize"]["docs"] + stats["tokenize"]["removed_by_dedup"]


def _ranked_workers(peak_mb: Mapping[str, float]) -> dict[str, float]:
    """The peaks with workers renamed by rank, largest first: "worker 1" is the largest."""
    workers = sorted(
        (mb for name, mb in peak_mb.items() if name.startswith("worker")), reverse=True
    )
    others = {name: mb for name, mb in peak_mb.items() if not name.startswith("worker")}
    return others | {f"worker {rank}": mb for rank, mb in enumerate(workers, 1)}


def _worker_peak_mb(run: Measured) -> float:
    """The largest peak RSS of the run's worker processes."""
    return max(mb for name, mb in run.peak_mb.items() if name.startswith("worker"))


def _describe(run: Measured) -> str:
    """What a run read and kept."""
    clean, dedup, tokens = run.stats["clean"], run.stats["dedup"], run.stats["tokenize"]
    removed = {kind: counts["docs"] for kind, counts in dedup["removed"].items()}
    return (
        f"{run.crawl.folder}: {len(run.crawl.warcs)} WARC files, {_stored(run.crawl) / 1e6:.1f} MB "
        f"stored, {run.crawl.html_pages} HTML pages, {run.crawl.html_bytes / 1e6:.1f} MB of HTML; "
        f"clean: {clean['tasks']} tasks, {clean['read']['docs']} records read, "
        f"{clean['kept']['docs']} kept ({clean['kept']['bytes'] / 1e6:.1f} MB of text); dedup "
        f"removed {removed['exact']} exact and {removed['near']} near; tokenize: "
        f"{tokens['docs']} documents, {tokens['tokens']} tokens in {tokens['shards']} shards"
    )


def _training_note(seconds: float | None) -> str:
    return "given" if seconds is None else f"trained on the 1x run's output in {seconds:.2f} s"


def _proc_status(pid: int) -> dict[str, float] | None:
    """VmRSS and VmHWM of a process in MB, or None once it has exited."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = dict(line.split(":", 1) for line in lines if line.startswith(("VmRSS", "VmHWM")))
    return {key: int(value.split()[0]) / 1024 for key, value in fields.items()}


def _jsonl_records(folder: Path) -> int:
    """Lines of the gzip JSONL files datatrove's writer left in `folder`."""
    total = 0
    for path in folder.glob("*.jsonl.gz"):
        with gzip.open(path, "rb") as handle:
            total += sum(1 for _ in handle)
    return total


def _stored(crawl: Crawl) -> int:
    return sum(os.path.getsize(warc) for warc in crawl.warcs)


def _timed(work: Callable[[], object]) -> float:
    """Seconds `work` took."""
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
