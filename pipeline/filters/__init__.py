"""Quality filters of the clean stage, one module per paper, and the config that selects them."""

from __future__ import annotations

from dataclasses import dataclass, field

from corpusmill.pipeline.filters.base import Filter, FilterResult, apply_filters
from corpusmill.pipeline.filters.c4 import C4, C4Config
from corpusmill.pipeline.filters.fineweb import FineWeb, FineWebConfig
from corpusmill.pipeline.filters.gopher_quality import GopherQuality, GopherQualityConfig
from corpusmill.pipeline.filters.gopher_repetition import GopherRepetition, GopherRepetitionConfig
from corpusmill.pipeline.filters.language import Language, LanguageConfig

__all__ = [
    "C4",
    "C4Config",
    "Filter",
    "FilterResult",
    "FiltersConfig",
    "FineWeb",
    "FineWebConfig",
    "GopherQuality",
    "GopherQualityConfig",
    "GopherRepetition",
    "GopherRepetitionConfig",
    "Language",
    "LanguageConfig",
    "apply_filters",
    "build_filters",
]


@dataclass(frozen=True)
class FiltersConfig:
    """One section per filter family."""

    language: LanguageConfig = field(
        default_factory=LanguageConfig, metadata={"help": "language allow-list and score"}
    )
    gopher_repetition: GopherRepetitionConfig = field(
        default_factory=GopherRepetitionConfig, metadata={"help": "Gopher repetition rules"}
    )
    gopher_quality: GopherQualityConfig = field(
        default_factory=GopherQualityConfig, metadata={"help": "Gopher quality rules"}
    )
    c4: C4Config = field(default_factory=C4Config, metadata={"help": "C4 line and document rules"})
    fineweb: FineWebConfig = field(
        default_factory=FineWebConfig, metadata={"help": "FineWeb's rules"}
    )


def build_filters(config: FiltersConfig) -> list[Filter]:
    """The enabled filters, in FineWeb's order: language first (cheap, and it decides which rules
    apply), then repetition, Gopher quality, C4 (which edits texts) and FineWeb's rules."""
    families = [
        (Language, config.language),
        (GopherRepetition, config.gopher_repetition),
        (GopherQuality, config.gopher_quality),
        (C4, config.c4),
        (FineWeb, config.fineweb),
    ]
    return [family(cfg) for family, cfg in families if cfg.enabled]
