"""Training a byte-level BPE tokenizer with HF tokenizers on a bounded, deterministic sample.

HF's BPE trainer keeps every distinct word and pair count in memory, which grows with the text it
sees (users report 100+ GB on long lines and space-less scripts). So we decide what it sees: at
most `max_doc_chars` characters of each document, and about `sample_bytes` bytes in all, drawn
evenly over the corpus by a hash of each document id (a first pass measures the corpus), streamed
one document at a time, so that besides the trainer only one batch of documents holds text. The
same input and options give the same `tokenizer.json`, byte for byte.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tqdm import tqdm

from corpusmill.core.atomic import write_text
from corpusmill.core.errors import UserError
from corpusmill.core.progress import Progress, progress
from corpusmill.core.storage import Location, location
from corpusmill.tokenizer.config import TokenizerConfig

log = logging.getLogger(__name__)

# GPT-4's split regex (tiktoken's cl100k_base): contractions, words with one leading non-letter,
# digits in groups of at most three, punctuation runs, line breaks, and other whitespace.
SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s+"""
)


def train_tokenizer(
    corpus: Iterable[pa.Table], config: TokenizerConfig
) -> tuple[Tokenizer, dict[str, Any]]:
    """Train on the `id` and `text` tables of `corpus`, which is read twice (an iterable such as
    pipeline's Corpus, not an iterator); return the tokenizer and counts."""
    if iter(corpus) is corpus:
        raise TypeError("train_tokenizer reads its corpus twice: pass an iterable, not an iterator")
    started = time.perf_counter()
    total = _measure(corpus, config)
    if total == 0:
        raise UserError(f"no text to train a tokenizer on in {corpus}")
    fraction = min(1.0, config.sample_bytes / total)
    counts: Counter[str] = Counter()
    tokenizer = new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=list(config.special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=sys.stderr.isatty(),
    )
    with progress("train-tokenizer", min(total, config.sample_bytes), unit="byte") as bar:
        # One text per item: tokenizers reads 256 items ahead, so items that were whole batches
        # would hold 256 batches of text at once.
        texts = _sample(corpus, config, fraction, counts, bar)
        tokenizer.train_from_iterator(texts, trainer)
    if tokenizer.get_vocab_size() < config.vocab_size:
        log.warning(
            "the sample has too few distinct pairs for %d tokens: the vocabulary has %d",
            config.vocab_size,
            tokenizer.get_vocab_size(),
        )
    stats = {
        "corpus_bytes": total,
        "sample_fraction": round(fraction, 6),
        "docs": counts["docs"],
        "bytes": counts["bytes"],
        "vocab_size": tokenizer.get_vocab_size(),
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info("trained a tokenizer: %s", stats)
    return tokenizer, stats


def new_tokenizer() -> Tokenizer:
    """An untrained byte-level BPE: NFC, GPT-4's split regex, bytes as printable characters."""
    # ignore_merges: a piece that is itself a token becomes that token, as tiktoken does.
    tokenizer = Tokenizer(models.BPE(ignore_merges=True))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, path: Location | str) -> None:
    """Write `tokenizer.json` atomically, locally or as an object (a URL), in the format
    tokenizers and transformers load as is."""
    write_text(location(path), tokenizer.to_str(pretty=True))


def _measure(tables: Iterable[pa.Table], config: TokenizerConfig) -> int:
    """UTF-8 bytes of the corpus as the trainer would see it (documents cut to max_doc_chars)."""
    total = 0
    with tqdm(desc="train-tokenizer: measuring", unit="doc", disable=None) as bar:
        for table in tables:
            total += int(pc.sum(pc.binary_length(_head(table, config))).as_py() or 0)
            bar.update(table.num_rows)
    return total


def _sample(
    tables: Iterable[pa.Table],
    config: TokenizerConfig,
    fraction: float,
    counts: Counter[str],
    bar: Progress,
) -> Iterator[str]:
    """The texts to train on, one at a time: documents whose id hashes below `fraction` of the
    hash range, cut to max_doc_chars, until the next one would pass sample_bytes."""
    threshold = fraction * 2.0**64
    for table in tables:
        text = _head(table, config)
        sizes = pc.binary_length(text).to_numpy(zero_copy_only=False).astype(np.int64)
        keep = sizes > 0
        if fraction < 1:
            hashes = np.fromiter(
                (xxhash.xxh3_64_intdigest(doc_id.encode()) for doc_id in table["id"].to_pylist()),
                dtype=np.uint64,
                count=table.num_rows,
            )
            keep &= hashes < threshold
        cumulative = counts["bytes"] + np.cumsum(np.where(keep, sizes, 0))
        full = cumulative > config.sample_bytes
        keep &= ~full
        yield from text.filter(pa.array(keep)).to_pylist()
        counts.update(docs=int(keep.sum()), bytes=int(sizes[keep].sum()))
        bar.update(int(sizes[keep].sum()))
        if full.any():
            return


def _head(table: pa.Table, config: TokenizerConfig) -> pa.Array:
    """Each document's first max_doc_chars characters."""
    return pc.utf8_slice_codeunits(table["text"].combine_chunks(), 0, config.max_doc_chars)
