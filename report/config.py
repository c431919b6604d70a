"""The settings of `corpusmill report`: sample sizes, the n-gram model and the compressors."""

from __future__ import annotations

from dataclasses import dataclass, field

from corpusmill.core.checks import COUNT, SIZE, Checked, above, below, between, integer
from corpusmill.train.heldout import HELD_OUT_BYTES


@dataclass(frozen=True)
class ReportConfig(Checked):
    """How much text the report measures, and the knobs of the models it fits."""

    held_out_bytes: int = field(
        default=HELD_OUT_BYTES,
        metadata={
            "help": "UTF-8 bytes of documents held out and measured (at most 10% of the run's), "
            "chosen by a hash of each document id, the same as `corpusmill train` evaluates on "
            "with the same value",
            "checks": SIZE,
        },
    )
    train_bytes: int = field(
        default=16 << 20,
        metadata={
            "help": "UTF-8 bytes of other documents the n-gram model and the zstd dictionary "
            "are fit on at most (memory and time grow with it)",
            "checks": SIZE,
        },
    )
    ngram_order: int = field(
        default=3,
        metadata={
            "help": "highest order of the Kneser-Ney token model (1 to 3)",
            "checks": (integer, between(1, 3)),
        },
    )
    # Kneser & Ney (1995) and Chen & Goodman (1998) find D = 0.75 close to the best single discount.
    discount: float = field(
        default=0.75,
        metadata={
            "help": "absolute discount of the Kneser-Ney model",
            "checks": (above(0), below(1)),
        },
    )
    # The zstd command line's default dictionary size (`zstd --train --maxdict`).
    dictionary_bytes: int = field(
        default=112640,
        metadata={"help": "size of the zstd dictionary trained on other documents", "checks": SIZE},
    )
    model_verify_tokens: int = field(
        default=0,
        metadata={
            "help": "tokens the trained model's coded stream is decoded back to check it; 0 "
            "decodes all",
            "checks": COUNT,
        },
    )
    top_tokens: int = field(
        default=20,
        metadata={"help": "most frequent tokens listed in the tokenizer section", "checks": COUNT},
    )
