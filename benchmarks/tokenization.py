"""Tokenization and tokenizer training next to the libraries they build on, on the same text.

Encoding: the tokenize stage (a local Dask cluster of T single-threaded workers, tiktoken, shards
and manifest written) against raw HF tokenizers `encode_batch` (T rayon threads) and raw tiktoken
`encode_ordinary_batch` (T threads) on the same texts with the same tokenizer.
Training: `train_tokenizer` (measuring pass, hash sampling, capped documents) against raw
`Tokenizer.train_from_iterator` with the same tokenizer and trainer, and sentencepiece BPE, on the
same documents; time and peak RSS, each in a process of its own.

The text is multilingual articles (en, de, fr, es, ru, zh) from the grammars of
sample_data/generate.py, seeded, written once as clean parts under --work and reused. Machines
differ and other load skews timings, so read the ratios between rows of one run.

    python benchmarks/tokenization.py [--encode-mb 256] [--train-mb 100 1000] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sentencepiece as spm
from tokenizers import Tokenizer, pre_tokenizers, trainers

from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.corpus import Corpus
from corpusmill.pipeline.schema import DOCUMENTS, document_id
from corpusmill.pipeline.tokenize import run_tokenize
from corpusmill.tokenizer.config import ShardsConfig, TokenizerConfig
from corpusmill.tokenizer.convert import to_tiktoken
from corpusmill.tokenizer.train import new_tokenizer, save_tokenizer, train_tokenizer

REPO = Path(__file__).resolve().parents[1]
PART_BYTES = 8 << 20
LANGS = ("en", "en", "de", "fr", "es", "ru", "zh")
SEED = 20240317


def main() -> None:
    """Generate (or reuse) the text, then print the encoding and training tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/corpusmill-bench-tokenize"))
    # Enough that the stage's fixed costs (cluster tasks, checking the tiktoken conversion) fade.
    parser.add_argument("--encode-mb", type=int, default=256, help="MB of text to encode")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--train-mb", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--vocab-size", type=int, default=32768)
    parser.add_argument(
        "--spm-max-mb", type=int, default=100, help="skip sentencepiece on larger samples"
    )
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child[0]](*args.child[1:])))
        return
    parts = ensure_text(args.work / "text", max([args.encode_mb, *args.train_mb]) << 20)
    if args.encode_mb:
        run = run_folder(args.work, parts, args.encode_mb << 20)
        tokenizer = ensure_tokenizer(args.work, run, args.vocab_size)
        print_encoding(run, tokenizer, args.threads)
    for mb in args.train_mb:
        run = run_folder(args.work, parts, mb << 20)
        print_training(run, mb, args.vocab_size, with_spm=mb <= args.spm_max_mb)


def ensure_text(folder: Path, total: int) -> list[Path]:
    """Clean parts of about PART_BYTES of generated articles each, until they hold `total` bytes."""
    sys.path.insert(0, str(REPO / "sample_data"))
    import generate  # the sample generator is a script, not a package

    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for index in range(-(-total // PART_BYTES)):
        path = folder / f"part-{index:05d}.parquet"
        if not path.exists():
            rng = generate.Rng(SEED + index)
            source = f"bench-{index:05d}.jsonl"
            rows, size = [], 0
            while size < PART_BYTES:
                lang = LANGS[len(rows) % len(LANGS)]
                topic = generate.TOPICS[rng.below(len(generate.TOPICS))]
                text = generate.build_article(lang, topic, rng.child()).main_text()
                rows.append((document_id(source, size), text, source, size, lang))
                size += len(text.encode())
            table = pa.table(
                {
                    "id": [row[0] for row in rows],
                    "text": [row[1] for row in rows],
                    "url": [None] * len(rows),
                    "title": [None] * len(rows),
                    "source": [row[2] for row in rows],
                    "offset": [row[3] for row in rows],
                    "lang": [row[4] for row in rows],
                    "lang_score": [1.0] * len(rows),
                    "meta": [None] * len(rows),
                },
                schema=DOCUMENTS,
            )
            pq.write_table(table, path, compression="zstd")
            print(f"generated {path}", file=sys.stderr)
        parts.append(path)
    return parts


def run_folder(work: Path, parts: list[Path], size: int) -> Path:
    """A run output folder whose clean parts are the first parts holding `size` bytes."""
    run = work / f"run-{size >> 20}mb"
    layout = RunLayout(run)
    layout.clean.mkdir(parents=True, exist_ok=True)
    for index, part in enumerate(parts[: -(-size // PART_BYTES)]):
        link = layout.clean_part(index)
        if not link.exists():
            link.symlink_to(part)
    return run


def ensure_tokenizer(work: Path, run: Path, vocab_size: int) -> Path:
    """A tokenizer trained with corpusmill on the encoding text (reused once written)."""
    path = work / f"tokenizer-{vocab_size}.json"
    if not path.exists():
        tokenizer, _ = train_tokenizer(Corpus([str(run)]), TokenizerConfig(vocab_size=vocab_size))
        save_tokenizer(tokenizer, path)
    return path


def print_encoding(run: Path, tokenizer: Path, threads: list[int]) -> None:
    """One row per (library, threads): MB/s of text, tokens/s, both per core, and ratios."""
    print(f"\nEncoding {_text_bytes(run) / 1e6:.1f} MB of text with {tokenizer.name}\n")
    print("| encoder | threads | MB/s | MB/s per core | Mtokens/s | vs raw tiktoken | vs raw HF |")
    print("|---|---|---|---|---|---|---|")
    for count in threads:
        raw = _child(["encode-raw", str(run), str(tokenizer)], {"RAYON_NUM_THREADS": str(count)})
        stage = encode_stage(run, tokenizer, count)
        rows = [
            ("HF tokenizers encode_batch", raw["hf"]),
            ("tiktoken encode_ordinary_batch", raw["tiktoken"]),
            ("tokenize stage (Dask, shards written)", stage),
        ]
        for name, seconds in rows:
            speed = raw["bytes"] / seconds / 1e6
            print(
                f"| {name} | {count} | {speed:.2f} | {speed / count:.2f} "
                f"| {raw['tokens'] / seconds / 1e6:.2f} "
                f"| {raw['tiktoken'] / seconds:.2f} | {raw['hf'] / seconds:.2f} |"
            )


def encode_stage(run: Path, tokenizer: Path, workers: int) -> float:
    """Seconds of `run_tokenize` on a cluster of `workers` (cluster start-up not counted)."""
    layout = RunLayout(run)
    for leftover in [layout.manifest, *layout.shards()]:
        leftover.unlink(missing_ok=True)
    shutil.rmtree(layout.tokenize, ignore_errors=True)
    with dask_client("", workers) as client:
        client.run(lambda: None)
        started = time.perf_counter()
        run_tokenize(run, TokenizerConfig(path=str(tokenizer)), ShardsConfig(), client)
        return time.perf_counter() - started


def print_training(run: Path, mb: int, vocab_size: int, with_spm: bool) -> None:
    """One row per trainer: seconds, peak RSS, and overhead over raw train_from_iterator."""
    print(f"\nTraining a {vocab_size}-token BPE on {_text_bytes(run) / 1e6:.0f} MB of text\n")
    print("| trainer | seconds | peak RSS GB | vs raw train_from_iterator |")
    print("|---|---|---|---|")
    names = ["train-raw", "train-ours", *(["train-spm"] if with_spm else [])]
    results = {name: _child([name, str(run), str(vocab_size)], {}) for name in names}
    labels = {
        "train-raw": "HF tokenizers train_from_iterator (raw)",
        "train-ours": "corpusmill train_tokenizer",
        "train-spm": "sentencepiece BPE (lines)",
    }
    for name, result in results.items():
        print(
            f"| {labels[name]} | {result['seconds']:.1f} | {result['rss'] / 2**30:.2f} "
            f"| {result['seconds'] / results['train-raw']['seconds']:.3f} |"
        )


def child_encode_raw(run: str, tokenizer: str) -> dict:
    """Seconds of raw HF encode_batch and raw tiktoken encode_ordinary_batch on the run's texts."""
    threads = int(os.environ["RAYON_NUM_THREADS"])
    texts = _texts(Path(run))
    hf = Tokenizer.from_file(tokenizer)
    fast = to_tiktoken(json.loads(Path(tokenizer).read_text()), "bench").encoding
    started = time.perf_counter()
    ids = fast.encode_ordinary_batch(texts, num_threads=threads)
    tiktoken_seconds = time.perf_counter() - started
    started = time.perf_counter()
    hf.encode_batch(texts, add_special_tokens=False)
    hf_seconds = time.perf_counter() - started
    return {
        "bytes": sum(len(text.encode()) for text in texts),
        "tokens": sum(map(len, ids)) + len(ids),  # with the EOS the stage appends
        "tiktoken": tiktoken_seconds,
        "hf": hf_seconds,
    }


def child_train(kind: str, run: str, vocab_size: str) -> dict:
    """Train one way on the run's documents; seconds and this process's peak RSS."""
    started = time.perf_counter()
    if kind == "ours":
        train_tokenizer(
            Corpus([run]), TokenizerConfig(vocab_size=int(vocab_size), sample_bytes=1 << 40)
        )
    elif kind == "raw":
        tokenizer = new_tokenizer()
        trainer = trainers.BpeTrainer(
            vocab_size=int(vocab_size),
            min_frequency=2,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(_batches(Path(run)), trainer)
    else:
        spm.SentencePieceTrainer.train(
            sentence_iterator=_lines(Path(run)),
            model_writer=io.BytesIO(),
            model_type="bpe",
            vocab_size=int(vocab_size),
            byte_fallback=True,
            split_digits=True,
            num_threads=os.cpu_count() or 1,
            minloglevel=2,
        )
    return {
        "seconds": time.perf_counter() - started,
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


CHILDREN = {
    "encode-raw": child_encode_raw,
    "train-ours": lambda run, vocab: child_train("ours", run, vocab),
    "train-raw": lambda run, vocab: child_train("raw", run, vocab),
    "train-spm": lambda run, vocab: child_train("spm", run, vocab),
}


def _child(args: list[str], env: dict[str, str]) -> dict:
    """Run one measurement in a fresh process (own thread pools, own peak RSS)."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _texts(run: Path) -> list[str]:
    return pq.read_table(RunLayout(run).clean, columns=["text"])["text"].to_pylist()


def _batches(run: Path) -> Iterator[list[str]]:
    """The texts in batches of 1,000, as the tokenizers documentation feeds its trainer."""
    for texts in _text_arrays(run):
        yield texts.to_pylist()


def _text_arrays(run: Path) -> Iterator[pa.Array]:
    layout = RunLayout(run)
    for part in layout.clean_parts():
        for batch in pq.ParquetFile(layout.clean_part(part)).iter_batches(
            batch_size=1000, columns=["text"]
        ):
            yield batch.column(0)


def _lines(run: Path) -> Iterator[str]:
    """Non-empty lines of the texts: sentencepiece trains on sentences, not documents."""
    for batch in _batches(run):
        for text in batch:
            yield from filter(None, text.split("\n"))


def _text_bytes(run: Path) -> int:
    return sum(int(pc.sum(pc.binary_length(texts)).as_py()) for texts in _text_arrays(run))


if __name__ == "__main__":
    main()
