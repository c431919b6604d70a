"""The `[tokenizer]` and `[shards]` sections of a run: which tokenizer encodes it, how it is
trained, and how the tokens are cut into shards. `train-tokenizer` takes the training keys as flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corpusmill.core.checks import NON_NEGATIVE, POSITIVE, Checked, between, distinct_nonempty

# Token ids up to 2^24 (16.8M, 64x the largest vocabularies in use): a larger id in a tokenizer is
# a damaged file, and a model's embedding of that many rows would not fit in memory.
MAX_VOCAB_SIZE = 1 << 24


def _room_for_merges(vocab_size: int, config: Any) -> str | None:
    """Allow vocabularies with room for merges beyond the 256 bytes and the special tokens,
    and at most MAX_VOCAB_SIZE tokens."""
    floor = 256 + len(config.special_tokens)
    if vocab_size <= floor:
        return (
            f"leaves no room for merges: it must exceed the 256 byte tokens plus "
            f"{len(config.special_tokens)} special tokens, {floor}"
        )
    if vocab_size > MAX_VOCAB_SIZE:
        return f"must be at most {MAX_VOCAB_SIZE}"
    return None


def _some(values: tuple[str, ...], _: Any) -> str | None:
    """Allow non-empty lists: the first special token ends every document."""
    return None if values else "must name at least the end-of-text token, e.g. <|endoftext|>"


@dataclass(frozen=True)
class TokenizerConfig(Checked):
    """The tokenizer of the tokenize stage: a given `tokenizer.json`, or a byte-level BPE trained on
    the run's deduplicated documents; the training keys also drive `corpusmill train-tokenizer`.
    """

    path: str = field(
        default="",
        metadata={
            "help": "a tokenizer.json to encode with; empty trains one in the run when train = "
            "true, and skips the tokenize stage otherwise",
            "path": True,
        },
    )
    train: bool = field(
        default=False,
        metadata={"help": "train a tokenizer on the run's deduplicated documents (path empty)"},
    )
    vocab_size: int = field(
        default=32768,
        metadata={
            "help": "tokens in the trained vocabulary, special tokens and 256 bytes included",
            "checks": (_room_for_merges,),
        },
    )
    min_frequency: int = field(
        default=2,
        metadata={
            "help": "a pair seen fewer times in the sample is never merged",
            "checks": (NON_NEGATIVE,),
        },
    )
    special_tokens: tuple[str, ...] = field(
        default=("<|endoftext|>",),
        metadata={
            "help": "special tokens of a trained tokenizer, ids from 0 in this order; the "
            "first (which a given tokenizer must have too) ends every document",
            "checks": (_some, distinct_nonempty),
        },
    )
    max_doc_chars: int = field(
        default=100_000,
        metadata={
            "help": "characters of each document the trainer sees: the trainer keeps every "
            "distinct word in memory, and very long documents (logs, tables, space-less "
            "scripts) are where distinct words pile up",
            "checks": (POSITIVE,),
        },
    )
    sample_bytes: int = field(
        default=1 << 30,
        metadata={
            "help": "UTF-8 bytes of text to train on at most, drawn evenly over the corpus by a "
            "hash of each document id; the trainer's memory grows with it, about 7 GB for 1 GB "
            "of multilingual text with 1/7 Chinese, and 90 bytes per byte of Chinese alone "
            "(benchmarks/tokenize.py)",
            "checks": (POSITIVE,),
        },
    )
    # GPT-3's and Llama's context; GPT-2's was 1024. Only transformers reads it: the shards and
    # the loader's sequences do not depend on it.
    model_max_length: int = field(
        default=2048,
        metadata={
            "help": "the context length, in tokens, of the models the tokenizer is for, written to "
            "tokenizer_config.json: transformers warns about longer inputs and truncates to it "
            "when asked",
            "checks": (POSITIVE,),
        },
    )

    @property
    def eos(self) -> str:
        """The end-of-text token appended after every document."""
        return self.special_tokens[0]


@dataclass(frozen=True)
class ShardsConfig(Checked):
    """How the tokenize stage cuts the corpus into `shard-NNNNN.arrow` files, and the documents it
    holds out as the validation split."""

    # llm.c's FineWeb preparation writes shards of 1e8 tokens: big enough that a corpus is a few
    # hundred files, small enough that one shard loads in well under a second.
    tokens_per_shard: int = field(
        default=100_000_000,
        metadata={
            "help": "target tokens per shard; shards end at document boundaries, so each "
            "holds about that many",
            "checks": (POSITIVE,),
        },
    )
    validation_fraction: float = field(
        default=0.0,
        metadata={
            "help": "share of documents held out in their own shards (val-NNNNN.arrow), chosen "
            "by a hash of each id (loader/split.py), which `corpusmill train` and `report` "
            "evaluate on; 0 writes none",
            "checks": (between(0, 0.5),),
        },
    )
