"""The settings of `corpusmill report`: sample sizes, the n-gram model and the compressors."""

from __future__ import annotations

from dataclasses import dataclass, field

from corpusmill.train.heldout import HELD_OUT_BYTES


@dataclass(frozen=True)
class ReportConfig:
    """How much text the report measures, and the knobs of the models it fits."""

    held_out_bytes: int = field(
        default=HELD_OUT_BYTES,
        metadata={
            "help": "UTF-8 bytes of documents held out and measured (at most 10% of the run's), "
            "chosen by a hash of each document id, the same as `corpusmill train` evaluates on "
            "with the same value"
        },
    )
    train_bytes: int = field(
        default=16 << 20,
        metadata={
            "help": "UTF-8 bytes of other documents the n-gram model and the zstd dictionary "
            "are fit on at most (memory and time grow with it)"
        },
    )
    ngram_order: int = field(
        default=3, metadata={"help": "highest order of the Kneser-Ney token model (1 to 3)"}
    )
    # Kneser & Ney (1995) and Chen & Goodman (1998) find D = 0.75 close to the best single discount.
    discount: float = field(
        default=0.75, metadata={"help": "absolute discount of the Kneser-Ney model"}
    )
    # The zstd command line's default dictionary size (`zstd --train --maxdict`).
    dictionary_bytes: int = field(
        default=112640, metadata={"help": "size of the zstd dictionary trained on other documents"}
    )
    model_verify_tokens: int = field(
        default=0,
        metadata={
            "help": "tokens the trained model's coded stream is decoded back to check it; 0 "
            "decodes all"
        },
    )
    top_tokens: int = field(
        default=20, metadata={"help": "most frequent tokens listed in the tokenizer section"}
    )

    def __post_init__(self) -> None:
        for name in ("held_out_bytes", "train_bytes", "dictionary_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"report.{name} must be positive, got {getattr(self, name)}")
        if not 1 <= self.ngram_order <= 3:
            raise ValueError(f"report.ngram_order must be 1, 2 or 3, got {self.ngram_order}")
        if not 0 < self.discount < 1:
            raise ValueError(f"report.discount must be in (0, 1), got {self.discount}")
