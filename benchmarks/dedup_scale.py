"""Dedup at scale: time per step, documents/s per core, peak worker memory, the largest bucket.

Writes N synthetic documents as clean-stage parts (short texts of random 6-letter words) and, for
each part, the signature step's files as that step would write them for the default settings, so
`run_dedup` finds them up to date and runs every later step unchanged. A tenth of the documents
are copies in known families: each copy is its original with the last of 12 words replaced
(3-word shingle Jaccard 9/11 = 0.82), sharing each of the 32 band keys with its original with
probability 0.82^3 = 0.55, as MinHash would; 3 in 10 copies are exact (same text hash, every band
key). One family of N/1000 copies makes one skewed bucket; with `--copies G ...`, each size is
run once per G with that family instead G exact copies of one page, which adds G rows to each of
the 33 buckets of its keys: the heavy-duplication case, paired in chunks of at most
`candidates.chunk_rows` rows. The signature step itself is thus not timed here (it only checks
its files: see benchmarks/dedup.py for its speed on real text).

Runs the stage on a local cluster of single-threaded workers and prints, per size: seconds per
step (wall clock span and the tasks' summed seconds), documents/s per core, each worker's peak RSS
(VmHWM, reset before the stage), the largest bucket's rows against `dedup.bucket_rows` and the
most rows a candidates task pairs at once, the candidate pairs and edges, and whether exactly the
planted copies were removed, each for its family's first document. A step's RSS includes what
earlier steps left in the workers, so the labels step is also run again alone on fresh workers
from the run's files, twice: with exact copies collapsed before the graph, and with none marked,
the graph of every edge as before they were. Step times come from Dask's
task stream, grouped by task function. Run `python benchmarks/dedup_scale.py [--docs 100000
1000000 10000000] [--copies 10000 100000 1000000] [--bucket-rows N] [--workers 2]`; a size is
skipped when the one before it took longer than `--max-seconds`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dask.utils import key_split
from distributed import get_task_stream

from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.dedup.candidates import chunk_rows
from corpusmill.pipeline.dedup.components import part_scores
from corpusmill.pipeline.dedup.config import DedupConfig
from corpusmill.pipeline.dedup.edges import Edges
from corpusmill.pipeline.dedup.files import DedupFiles
from corpusmill.pipeline.dedup.hashing import fmix64
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.labels import submit_labels
from corpusmill.pipeline.dedup.shuffle import partition_of, read_table, write_sorted
from corpusmill.pipeline.dedup.signatures import signature_metadata
from corpusmill.pipeline.dedup.stage import run_dedup

WORDS = 12
LETTERS = 6
COPIES = 0.10  # of all documents, copies of an earlier one
EXACT = 0.3  # of the copies, exact
SHARED_BAND = 0.82**3  # a near copy's chance of an equal band key
STEPS = ("signatures", "candidates", "shingles", "edges", "labels", "clusters", "removed")
# Task functions of each step; the rest (components, keepers) are the labels step's.
_STEP_OF = {
    "signatures_task": "signatures",
    "candidates_task": "candidates",
    "shingles_task": "shingles",
    "edges_task": "edges",
    "clusters_task": "clusters",
    "histogram_task": "clusters",
    "kept_ids_task": "removed",
    "write_removed": "removed",
}


def main() -> None:
    """Run each size in turn, print its table and the summary, stop early when one is slow."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--part-docs", type=int, default=200_000, help="documents per clean part")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument(
        "--max-seconds", type=float, default=90.0, help="run the next size only below this"
    )
    parser.add_argument(
        "--local-max-edges",
        type=int,
        default=DedupConfig().local_max_edges,
        help="dedup.local_max_edges; 0 finds components in distributed rounds",
    )
    parser.add_argument(
        "--partition-edges",
        type=int,
        default=DedupConfig().partition_edges,
        help="dedup.partition_edges: edges per partition of the distributed components",
    )
    parser.add_argument(
        "--copies",
        type=int,
        nargs="+",
        default=[0],
        help="exact copies of one page, a run per value (0: the family of N/1000 copies)",
    )
    parser.add_argument(
        "--bucket-rows",
        type=int,
        default=DedupConfig().bucket_rows,
        help="dedup.bucket_rows: band-key rows per bucket, and so per candidates task",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = DedupConfig(
        local_max_edges=args.local_max_edges,
        partition_edges=args.partition_edges,
        bucket_rows=args.bucket_rows,
    )
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    results = []
    for docs in sorted(args.docs):
        for copies in sorted(args.copies):
            with tempfile.TemporaryDirectory() as tmp:
                result = measure(
                    Path(tmp), docs, args.part_docs, args.workers, config, args.seed, copies
                )
            results.append(result)
            print_steps(result, args.workers)
        if result["seconds"] > args.max_seconds:
            print(f"stopping: {docs:,} documents took over {args.max_seconds:.0f} s")
            break
    print_summary(results, args.workers, config)


def measure(
    out: Path,
    docs: int,
    part_docs: int,
    workers: int,
    config: DedupConfig,
    seed: int,
    copies: int = 0,
) -> dict[str, Any]:
    """Write the inputs of `docs` documents (with `copies` exact copies of one page, if not 0),
    then run the dedup stage on them and measure it."""
    original, exact = plant_families(docs, seed, copies)
    parts = math.ceil(docs / part_docs)
    buckets = max(1, math.ceil(docs * (1 + config.bands) / config.bucket_rows))
    files = DedupFiles(RunLayout(out), tuple(range(parts)), buckets)
    started = time.perf_counter()
    with dask_client(workers=workers) as client:
        futures = [
            client.submit(
                write_inputs,
                part,
                original[part * part_docs : (part + 1) * part_docs],
                exact[part * part_docs : (part + 1) * part_docs],
                part * part_docs,
                files,
                config,
                pure=False,
            )
            for part in range(parts)
        ]
        bucket_rows = np.sum(client.gather(futures), axis=0)
    written = time.perf_counter() - started
    load = os.getloadavg()[0]
    with dask_client(workers=workers) as client:
        pids = sorted(client.run(os.getpid).values())
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        idle = [_status_mb(pid, "VmRSS") for pid in pids]
        with get_task_stream(client) as stream, sampled_rss(pids) as samples:
            stats = run_dedup(out, config, client)
        peak = [_status_mb(pid, "VmHWM") for pid in pids]
    labels_alone = [labels_peak(files, config, workers, collapse) for collapse in (True, False)]
    steps = step_times(stream.data)
    for times in steps.values():
        during = [mb for at, mb in samples if times["start"] <= at <= times["stop"]]
        times["rss"] = f"{max(during):.0f}" if during else "-"  # shorter than a poll
    return {
        "docs": docs,
        "copies": copies,
        "parts": parts,
        "buckets": buckets,
        "written": written,
        "load": load,
        "seconds": stats["seconds"],
        "steps": steps,
        "idle_mb": idle,
        "peak_mb": peak,
        "largest_bucket": int(bucket_rows.max()),
        "chunk_rows": chunk_rows(config),
        "chunks": len(list((out / "dedup" / "pairs").glob("*.arrow"))),
        "mean_bucket": float(bucket_rows.mean()),
        "pairs": stats["pairs"],
        "labels_alone": labels_alone,
        "components": stats["components"],
        "correct": check_removed(RunLayout(out).removed, original, exact),
        "removed": stats["removed"],
    }


def labels_peak(files: DedupFiles, config: DedupConfig, workers: int, collapse: bool) -> float:
    """The labels step run again alone, on fresh workers, from the run's members files: its
    workers' largest peak RSS (VmHWM) in MB. Not `collapse`: with no copy marked, so that the
    graph holds every edge, as before exact copies were collapsed."""
    edges = []
    for j in range(files.buckets):
        members = files.file("members", j)
        if not collapse:
            rows = read_table(members)
            members = files.run.dedup / "uncollapsed" / members.name
            members.parent.mkdir(exist_ok=True)
            unmarked = pa.array(np.zeros(rows.num_rows, bool))
            write_sorted(members, rows.set_column(2, "copy", unmarked))
        counts = {"edges": read_table(files.file("edges", j)).num_rows}
        edges.append(Edges(files.file("edges", j), members, files.file("firsts", j), counts))
    with dask_client(workers=workers) as client:
        pids = sorted(client.run(os.getpid).values())
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        labelled, _ = submit_labels(client, files, config, edges, part_scores(files, config.keeper))
        client.gather(labelled)
        return max(_status_mb(pid, "VmHWM") for pid in pids)


def plant_families(docs: int, seed: int, heavy: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each document's original (its own index unless it is a copy) and whether it is an exact
    copy. Families of 2 to ~20 documents at random places, plus one of docs/1000 copies, or of
    `heavy` exact copies if not 0; a family's first document is its original."""
    rng = np.random.default_rng(seed)
    big = heavy or max(1, docs // 1000)
    copies = int(docs * COPIES) - max(1, docs // 1000)
    small = rng.geometric(0.5, copies)
    small = small[: np.searchsorted(np.cumsum(small), copies) + 1]
    small[-1] -= small.sum() - copies
    sizes = np.concatenate([[1 + big], 1 + small])
    members = rng.permutation(docs)[: sum(sizes)]
    family = np.repeat(np.arange(len(sizes)), sizes)
    first = np.full(len(sizes), docs)
    np.minimum.at(first, family, members)
    original = np.arange(docs)
    original[members] = first[family]
    exact = (original != np.arange(docs)) & (rng.random(docs) < EXACT)
    if heavy:
        family_0 = members[: 1 + big]
        exact[family_0[family_0 != first[0]]] = True
    return original, exact


def write_inputs(
    part: int,
    original: np.ndarray,
    exact: np.ndarray,
    start: int,
    files: DedupFiles,
    config: DedupConfig,
) -> np.ndarray:
    """Write clean part `part` (ids, texts) with its done marker, and its signature and size
    files as the signature step would; return its rows per bucket."""
    index = start + np.arange(len(original))
    texts = _texts(index, original, exact)
    ids = pa.array(np.char.mod("%010d", index).astype(object), pa.string())
    layout = files.run
    layout.clean_marker(part).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": ids, "text": texts}), layout.clean_part(part))
    layout.clean_marker(part).write_text(json.dumps({"kept": {"docs": len(index)}}))

    keys = (np.int64(part) << ROW_BITS) + np.arange(len(index))
    sizes = pc.binary_length(texts).cast(pa.int64())
    # A near copy shares each band key with its original with MinHash's chance; an exact copy
    # shares them all and its text hash.
    bands = np.arange(config.bands + 1, dtype=np.uint64)
    shared = exact[:, None] | (
        np.random.default_rng(start).random((len(index), config.bands + 1)) < SHARED_BAND
    )
    shared[:, -1] = exact
    source = np.where(shared, original[:, None], index[:, None]).astype(np.uint64)
    seed = source * np.uint64(64) + bands
    high = fmix64(seed ^ np.uint64(0x9E3779B97F4A7C15)).ravel()
    low = fmix64(seed).ravel()
    bucket = partition_of(low, files.buckets)
    band = np.tile(bands.astype(np.uint16), len(index))
    owner = np.repeat(keys, config.bands + 1)
    # Sorted as the signature step sorts them: the candidates step merges them in this order.
    order = np.lexsort((owner, low, high, band, bucket))
    rows = pa.table(
        {
            "bucket": bucket[order].astype(np.uint32),
            "band": band[order],
            "high": high[order],
            "low": low[order],
            "key": owner[order],
        }
    )
    counts = {"docs": len(index), "bytes": int(pc.sum(sizes).as_py())}
    params = signature_metadata(files, config, part)
    write_sorted(files.file("sizes", part), pa.table({"key": keys, "bytes": sizes}))
    write_sorted(files.file("signatures", part), rows, {"params": params, "counts": counts})
    return np.bincount(bucket, minlength=files.buckets)


def _texts(index: np.ndarray, original: np.ndarray, exact: np.ndarray) -> pa.LargeStringArray:
    """12 words of 6 letters per document, each drawn from its original's hash; a near copy's
    last word from its own."""
    word = np.repeat(original[:, None], WORDS, axis=1).astype(np.uint64)
    word[:, -1] = np.where(exact, original, index)
    word = fmix64(word * np.uint64(WORDS) + np.arange(WORDS, dtype=np.uint64))
    letters = (word[:, :, None] // (np.uint64(26) ** np.arange(LETTERS, dtype=np.uint64))) % 26
    chars = np.full((len(index), WORDS, LETTERS + 1), ord(" "), np.uint8)
    chars[:, :, :LETTERS] = letters.astype(np.uint8) + ord("a")
    data = chars.reshape(len(index), -1)[:, :-1].ravel()
    width = WORDS * (LETTERS + 1) - 1
    offsets = np.arange(len(index) + 1, dtype=np.int64) * width
    return pa.LargeStringArray.from_buffers(
        len(index), pa.py_buffer(offsets), pa.py_buffer(data.tobytes())
    )


def step_times(tasks: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per step, the wall-clock span of its tasks and the seconds they computed."""
    spans: dict[str, list[float]] = defaultdict(lambda: [math.inf, 0.0, 0.0])
    for task in tasks:
        step = _STEP_OF.get(key_split(task["key"]), "labels")
        for part in task["startstops"]:
            if part["action"] == "compute":
                span = spans[step]
                span[0] = min(span[0], part["start"])
                span[1] = max(span[1], part["stop"])
                span[2] += part["stop"] - part["start"]
    return {
        step: {"start": spans[step][0], "stop": spans[step][1], "busy": spans[step][2]}
        for step in STEPS
        if step in spans
    }


@contextmanager
def sampled_rss(pids: list[int]) -> Iterator[list[tuple[float, float]]]:
    """(time, largest RSS of the workers in MB), every 20 ms while the block runs: a step's peak
    is the largest sample within its tasks' span."""
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.02):
            samples.append((time.time(), max(_status_mb(pid, "VmRSS") for pid in pids)))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def check_removed(path: Path, original: np.ndarray, exact: np.ndarray) -> bool:
    """Whether removed.parquet lists exactly the planted copies, each kept as its original and
    of its kind."""
    table = pq.read_table(path, columns=["id", "kept_id", "kind"])
    removed = pc.cast(table.column("id"), pa.int64()).to_numpy()
    kept = pc.cast(table.column("kept_id"), pa.int64()).to_numpy()
    kind = np.asarray(table.column("kind").to_pylist()) == "exact"
    copies = np.flatnonzero(original != np.arange(len(original)))
    order = np.argsort(removed)
    return (
        np.array_equal(removed[order], copies)
        and np.array_equal(kept[order], original[copies])
        and np.array_equal(kind[order], exact[copies])
    )


def _status_mb(pid: int, field: str) -> float:
    """A field of /proc/PID/status (VmRSS, VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def print_steps(result: dict[str, Any], workers: int) -> None:
    """The size's table: each step's span, busy seconds and documents/s per core."""
    docs = result["docs"]
    print(
        f"\n{docs:,} documents ({_family(result)}) in {result['parts']} parts, "
        f"{result['buckets']} buckets in {result['chunks']} chunks (inputs written in "
        f"{result['written']:.1f} s; load average {result['load']:.2f})"
    )
    print("| step | wall s | task s | docs/s per core | peak worker RSS MB |")
    print("|---|---|---|---|---|")
    for step, times in result["steps"].items():
        rate = docs / times["busy"] if times["busy"] else math.inf
        span = times["stop"] - times["start"]
        print(f"| {step} | {span:.1f} | {times['busy']:.1f} | {rate:,.0f} | {times['rss']} |")
    busy = sum(times["busy"] for times in result["steps"].values())
    print(
        f"| stage | {result['seconds']:.1f} | {busy:.1f} | "
        f"{docs / busy:,.0f} ({docs / result['seconds'] / workers:,.0f} wall clock) | "
        f"{max(result['peak_mb']):.0f} (VmHWM) |"
    )


def print_summary(results: list[dict[str, Any]], workers: int, config: DedupConfig) -> None:
    """One line per run: time, memory, largest bucket, pairs, edges, correctness."""
    print(
        "\n| documents | largest family | stage s | docs/s per core | peak RSS per worker (idle) "
        "| candidates, labels steps peak RSS | labels step alone, peak RSS: copies collapsed, not "
        "| largest bucket rows (mean) | buckets, chunks "
        "| candidate pairs | edges | components | removed exact + near | correct |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        peaks = " / ".join(f"{p:.0f}" for p in r["peak_mb"])
        idle = " / ".join(f"{m:.0f}" for m in r["idle_mb"])
        pairs = r["pairs"]
        print(
            f"| {r['docs']:,} | {_family(r)} | {r['seconds']:.1f} | "
            f"{r['docs'] / r['seconds'] / workers:,.0f} | {peaks} MB ({idle}) | "
            f"{r['steps']['candidates']['rss']}, {r['steps']['labels']['rss']} MB | "
            f"{r['labels_alone'][0]:.0f}, {r['labels_alone'][1]:.0f} MB | "
            f"{r['largest_bucket']:,} ({r['mean_bucket']:,.0f}) | {r['buckets']}, {r['chunks']} | "
            f"{pairs['exact'] + pairs['candidates']:,} | {pairs['edges']:,} | "
            f"{_components(r['components'])} | {r['removed']['exact']['docs']:,} + "
            f"{r['removed']['near']['docs']:,} | {'yes' if r['correct'] else 'NO'} |"
        )
    print(
        f"\nbucket_rows = {config.bucket_rows:,}, at most {chunk_rows(config):,} rows paired at "
        f"once (~165 bytes a row: {chunk_rows(config) * 165 / 1e6:.0f} MB per candidates task); "
        "local_max_edges = "
        f"{config.local_max_edges:,} (~120 bytes an edge: "
        f"{config.local_max_edges * 120 / 1e6:.0f} MB on one worker); partition_edges = "
        f"{config.partition_edges:,} (~100 bytes an edge: "
        f"{config.partition_edges * 100 / 1e6:.0f} MB per distributed components task)"
    )


def _family(result: dict[str, Any]) -> str:
    """The largest planted family: G exact copies of one page, or docs/1000 mixed copies."""
    if result["copies"]:
        return f"{result['copies']:,} exact copies"
    return f"{max(1, result['docs'] // 1000):,} copies"


def _components(how: dict[str, Any]) -> str:
    """How components were found: locally, or in how many distributed rounds of how many
    partitions."""
    rounds = how.get("rounds")
    if not rounds:
        return how["method"]
    return f"{how['method']}, {rounds} rounds of {how['partitions']} partitions"


if __name__ == "__main__":
    main()
