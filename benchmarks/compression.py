"""Prediction is compression, on real English prose: zstd, a Kneser-Ney trigram and the numpy GPT
trained for a CPU budget, each coding the same held-out documents, in bits per byte.

Text: the GNU manuals installed as info files (`/usr/share/info/*.info*.gz`: coreutils, find,
grep, sed, gzip, wget, gnupg, gettext, ...), one document per info node of at least 200 bytes.
The held-out documents are chosen as `corpusmill train` and `corpusmill report` choose them
(train/heldout.py, 131,072 bytes); the BPE tokenizer, the zstd dictionary and the trigram are fit
on the other documents, and the model trains on them until its training steps have used
`--cpu-seconds` of CPU time (`corpusmill train --cpu-seconds`: every BLAS thread counted,
evaluations not; the cosine decay follows the seconds spent, so a busy machine costs steps, not
the end of the schedule). One BLAS thread: on this model's matrices a second one spent 5.5 times
the CPU per step (20 CPU-seconds ran 22 steps with two threads, 121 with one). Every model figure
is an actual arithmetic code, decoded back to the held-out text and checked identical; the
model's total description length adds its checkpoint's bytes.

    python benchmarks/compression.py [--cpu-seconds 1200] [--blas-threads 1] [--info DIR]
                                      [--work DIR] [--reuse-model]

On this 2-core machine, shared with other work, with the default `--cpu-seconds 1200` (10 minutes
on 2 cores; 7,584 steps of 16 x 128 tokens, 1,646 s of wall time), 1,378 documents (4.6 MB), 63
held out (129,265 bytes, 37,493 tokens of a 4,096 vocabulary):

| method | bits/byte |
|---|---|
| numpy GPT (7,584 steps, 15.5M tokens seen), arithmetic-coded | 1.483 |
| Kneser-Ney trigram, arithmetic-coded | 1.561 |
| zstd -19 + dictionary, one stream | 2.060 |
| zstd -19 + dictionary, each document alone | 2.232 |
| zstd -19, one stream | 2.333 |
| zstd -19, each document alone | 3.194 |

The model (937,472 parameters, a 3,786,386-byte checkpoint) codes the held-out text in 23,960
bytes to zstd -19's 37,703, and pays for itself against zstd -19 from 36 MB of such text. Its
held-out curve passes the trigram after about 800 CPU-seconds (1.551 bits per byte); runs of 150
and 300 CPU-seconds, the same model and settings, end at 1.783 and 1.628, behind it. The trigram
is fit on the other 4.5 MB of manuals, which repeat node headers, menus and option lists.
Tried at 150 CPU-seconds: a peak learning rate of 3e-3 instead of 1e-2 (1.799) and 3 blocks
192 wide (1.954, 421 steps: too few for its size). `--reuse-model` codes with the checkpoint
a run left in `--work`, without training again.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

from corpusmill.core.checksums import file_checksum
from corpusmill.loader.format import Manifest, token_type, tokens_array, write_shard
from corpusmill.loader.layout import MANIFEST, shard_name
from corpusmill.pipeline.ngram import KneserNey
from corpusmill.report.build import break_even_bytes
from corpusmill.report.compressors import compressed_sizes, train_dictionary
from corpusmill.report.predict import CheckpointModel, code_documents
from corpusmill.tokenizer.config import TokenizerConfig
from corpusmill.tokenizer.encode import load_encoder
from corpusmill.tokenizer.train import save_tokenizer, train_tokenizer
from corpusmill.train.checkpoint import load_checkpoint
from corpusmill.train.heldout import HELD_OUT_BYTES, split_rows
from corpusmill.train.loop import TrainConfig, train

EOS = "<|endoftext|>"
MODEL = TrainConfig(
    n_layer=2, n_head=4, n_embd=128, seq_len=128, batch_size=16, lr=1e-2, warmup=100,
    steps=1 << 30, eval_every=250,
)  # fmt: skip


def main() -> None:
    """Read the manuals, fit everything on the training documents, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cpu-seconds", type=float, default=1200.0, help="CPU seconds of training steps"
    )
    parser.add_argument(
        "--blas-threads", type=int, default=1, help="BLAS threads training and coding use"
    )
    parser.add_argument("--info", type=Path, default=Path("/usr/share/info"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/corpusmill-bench-compression"))
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument(
        "--reuse-model",
        action="store_true",
        help="code with the checkpoint an earlier run left in --work instead of training again",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    ids, texts = info_documents(args.info)
    sizes = np.array([len(text.encode()) for text in texts])
    held, rest = split_rows(ids, sizes, HELD_OUT_BYTES)
    held_texts = [texts[i] for i in held]
    rest_texts = [texts[i] for i in rest]
    num_bytes = int(sizes[held].sum())
    print(
        f"{len(texts)} documents, {sizes.sum():,} bytes from {args.info}; held out "
        f"{len(held)} documents, {num_bytes:,} bytes"
    )
    run = write_run(args.work / "run", ids, texts, rest_texts, args.vocab_size)
    encoder = load_encoder(run / "tokenizer.json")
    eos_id = encoder.token_id(EOS)
    held_tokens = encoder.encode(held_texts)
    rows: list[tuple[str, float]] = []
    sizes_by_method = compressed_sizes(
        [t.encode() for t in held_texts],
        train_dictionary([t.encode() for t in rest_texts], 112640),
    )
    for name in ("zstd -19", "zstd -19 + dictionary"):
        for way, label in (("documents", "each document alone"), ("stream", "one stream")):
            rows.append((f"{name}, {label}", sizes_by_method[name][way] * 8 / num_bytes))
    trigram = KneserNey(encoder.encode(rest_texts), encoder.vocab_size, eos_id, order=3)
    coded = code_documents(trigram, held_tokens, eos_id, held_texts, encoder.decode, name="trigram")
    assert coded["round_trip"] and coded["identical_documents"] == len(held)
    rows.append(("Kneser-Ney trigram, arithmetic-coded", coded["coded_bytes"] * 8 / num_bytes))
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        config = dataclasses.replace(MODEL, cpu_seconds=args.cpu_seconds)
        if not args.reuse_model:
            train(run, config, args.work / "model.npz", progress=True)
        model, meta = load_checkpoint(args.work / "model.npz")
        started = time.perf_counter()
        coded = code_documents(
            CheckpointModel(model, eos_id), held_tokens, eos_id, held_texts, encoder.decode,
            name="model",
        )  # fmt: skip
        coding = time.perf_counter() - started
    assert coded["round_trip"] and coded["identical_documents"] == len(held)
    model_bpb = coded["coded_bytes"] * 8 / num_bytes
    last = meta["history"][-1]
    rows.append(
        (
            f"numpy GPT ({meta['steps']:,} steps, {last['tokens_seen'] / 1e6:.1f}M tokens seen), "
            "arithmetic-coded",
            model_bpb,
        )
    )
    print(
        f"\ntraining budget: {args.cpu_seconds:,.0f} CPU-seconds of training steps = "
        f"{args.cpu_seconds / 120:.1f} minutes on 2 cores, {args.blas_threads} BLAS thread(s); "
        f"spent {meta['cpu_seconds']:,.0f}, {meta['seconds']:,.0f} s of wall time with the "
        "evaluations\n\n| CPU-seconds | step | tokens seen | held-out bits/byte |\n"
        "|---|---|---|---|"
    )
    for entry in meta["history"]:
        print(
            f"| {entry['cpu_seconds']:,.0f} | {entry['step']:,} | {entry['tokens_seen']:,} | "
            f"{entry['eval_bpb']:.3f} |"
        )
    print("\n| method | bits/byte |\n|---|---|")
    for name, bpb in sorted(rows, key=lambda row: row[1]):
        print(f"| {name} | {bpb:.3f} |")
    model_bytes = (args.work / "model.npz").stat().st_size
    total = model_bytes + coded["coded_bytes"]
    zstd = sizes_by_method["zstd -19"]["stream"]
    even = break_even_bytes(model_bytes, model_bpb, zstd * 8 / num_bytes)
    print(
        f"\nmodel: {model.num_params():,} parameters, checkpoint {model_bytes:,} bytes; coded "
        f"held-out text {coded['coded_bytes']:,} bytes (zstd -19 stream {zstd:,}); model + code "
        f"{total:,} bytes, {total / num_bytes:.2f} of the raw bytes; "
        + (
            f"pays for itself against zstd -19 from {even / 1e6:,.0f} MB"
            if even
            else "never pays for itself"
        )
        + f". Coding and decoding {coded['tokens']:,} tokens took {coding:.1f} s."
    )


def info_documents(folder: Path) -> tuple[list[str], list[str]]:
    """Ids and texts of every info node of at least 200 bytes in the manuals in `folder`."""
    ids, texts = [], []
    for path in sorted(folder.glob("*.info*.gz")):
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
            nodes = handle.read().split("\x1f\n")
        for number, node in enumerate(nodes):
            if node.startswith(("Tag Table:", "Indirect:", "Local Variables")):
                continue
            if len(node.encode()) >= 200:
                ids.append(f"{path.name}#{number}")
                texts.append(node)
    return ids, texts


def write_run(
    out: Path, ids: list[str], texts: list[str], train_texts: list[str], vocab_size: int
) -> Path:
    """A tokenized run of every document (one shard), its tokenizer trained on `train_texts`."""
    out.mkdir(parents=True, exist_ok=True)
    corpus = [pa.table({"id": [str(i) for i in range(len(train_texts))], "text": train_texts})]
    tokenizer, _ = train_tokenizer(corpus, TokenizerConfig(vocab_size=vocab_size))
    save_tokenizer(tokenizer, out / "tokenizer.json")
    encoder = load_encoder(out / "tokenizer.json")
    eos_id = encoder.token_id(EOS)
    kind = token_type(encoder.vocab_size)
    table = pa.table(
        {
            "id": ids,
            "tokens": tokens_array(encoder.encode(texts), eos_id, kind),
            "num_bytes": [len(text.encode()) for text in texts],
        }
    )
    shard = write_shard(out / shard_name(0), [table], kind)
    manifest = Manifest(
        tokenizer="tokenizer.json",
        tokenizer_xxh3=file_checksum(out / "tokenizer.json"),
        vocab_size=encoder.vocab_size,
        token_dtype=str(kind),
        eos_id=eos_id,
        tokens_per_shard=1 << 30,
        shards=(shard,),
    )
    (out / MANIFEST).write_text(manifest.to_json())
    return out


if __name__ == "__main__":
    main()
