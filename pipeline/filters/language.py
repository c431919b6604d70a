"""Language rules: keep documents in the allowed languages, identified with enough confidence.

Reads the `lang` and `lang_score` columns the language-id step wrote (fastText lid.176). Runs
first: it is the cheapest filter, and the language decides which rules of the others apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core.checks import FRACTION, Checked
from corpusmill.pipeline.filters.base import (
    FilterResult,
    Measures,
    RuleFamily,
    Splits,
    first_failures,
    is_in,
)
from corpusmill.pipeline.langid import LANGUAGES, language_code


def _known_languages(codes: tuple[str, ...], _: object) -> str | None:
    """Allow only codes lid.176 can return: any other code would remove every document."""
    unknown = [code for code in codes if code not in LANGUAGES]
    if not unknown:
        return None
    hints = []
    for code in unknown:
        meant = language_code(code)
        hint = f' (did you mean "{meant}", {LANGUAGES[meant]}?)' if meant else ""
        hints.append(f'"{code}"{hint}')
    return (
        f"unknown language code {', '.join(hints)}; use the ISO 639 codes of fastText lid.176 "
        "(en, de, zh, ...; all 176 are listed in pipeline/langid.py)"
    )


@dataclass(frozen=True)
class LanguageConfig(Checked):
    """Which languages to keep and how sure the language id must be."""

    enabled: bool = field(default=True, metadata={"help": "run the language rules"})
    languages: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "ISO 639 codes of the languages to keep, as fastText lid.176 names them "
            "(en, de, zh, ...); empty keeps any",
            "checks": (_known_languages,),
        },
    )
    # FineWeb's threshold for its English fastText score (Penedo et al. 2024).
    min_score: float = field(
        default=0.65,
        metadata={
            "help": "remove documents whose language score is below this",
            "checks": (FRACTION,),
        },
    )


class Language(RuleFamily[LanguageConfig]):
    """Removes documents in other languages, or whose language id is unsure (or missing)."""

    name = "language"
    signal_fields = (pa.field("lang", pa.string()), pa.field("score", pa.float32(), False))

    def measure(self, docs: pa.Table, splits: Splits) -> Measures:
        scores = pc.fill_null(docs.column("lang_score").combine_chunks(), 0.0)
        return Measures({"lang": docs.column("lang").combine_chunks(), "score": scores})

    def decide(self, signals: Mapping[str, Any]) -> FilterResult:
        cfg = self.config
        langs, scores = signals["lang"], np.asarray(signals["score"], np.float32)
        allowed = is_in(langs, cfg.languages) if cfg.languages else np.ones(len(langs), bool)
        # Scores are float32: compare in float32, so a score of 0.65 passes a threshold of 0.65.
        confident = scores >= np.float32(cfg.min_score)
        return first_failures(
            self.name, len(langs), [("not_allowed", ~allowed), ("low_score", ~confident)]
        )
