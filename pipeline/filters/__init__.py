"""Quality filters of the clean stage, one module per paper, the user's own (custom), and the
config that selects them."""

from __future__ import annotations

from dataclasses import dataclass, field

from corpusmill.core.checks import Checked, ConfigValueError
from corpusmill.core.storage import Location
from corpusmill.pipeline.filters.base import (
    Decision,
    Filter,
    FilterResult,
    RuleFamily,
    apply_filters,
    decide_filters,
    judge_families,
    signals_type,
)
from corpusmill.pipeline.filters.c4 import C4, C4Config
from corpusmill.pipeline.filters.compression import Compression, CompressionConfig
from corpusmill.pipeline.filters.custom import Custom, CustomFilterConfig
from corpusmill.pipeline.filters.fineweb import FineWeb, FineWebConfig
from corpusmill.pipeline.filters.gopher_quality import GopherQuality, GopherQualityConfig
from corpusmill.pipeline.filters.gopher_repetition import GopherRepetition, GopherRepetitionConfig
from corpusmill.pipeline.filters.language import Language, LanguageConfig
from corpusmill.pipeline.filters.perplexity import Perplexity, PerplexityConfig

__all__ = [
    "C4",
    "C4Config",
    "Compression",
    "CompressionConfig",
    "Custom",
    "Decision",
    "CustomFilterConfig",
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
    "Perplexity",
    "PerplexityConfig",
    "RuleFamily",
    "apply_filters",
    "build_custom",
    "build_families",
    "build_filters",
    "decide_filters",
    "judge_families",
    "signals_type",
]


# The built-in families in FineWeb's order: language first (cheap, and it decides which rules
# apply), then repetition, Gopher quality, C4 (which edits texts) and FineWeb's rules, then
# perplexity (CCNet's, the costliest, on the texts C4 left). The compression ratio comes after
# the Gopher rules, which name the short and repetitive documents they remove, and before C4, so
# that it is the ratio of the document signals. Each is configured by the section of
# FiltersConfig named as the filter.
FAMILIES = (Language, GopherRepetition, GopherQuality, Compression, C4, FineWeb, Perplexity)
# The clean stage's other steps, whose names prefix rejections as the filters' do.
_STEPS = ("read", "extract", "normalize", "langid", "pii", "filters")


@dataclass(frozen=True)
class FiltersConfig(Checked):
    """One section per filter family, the user's own filters, and whether their signals are
    stored."""

    store_signals: bool = field(
        default=True,
        metadata={
            "help": "write every filtered document's signals to OUT/signals/, from which "
            "refilter and a rerun changing only thresholds decide without the inputs"
        },
    )
    language: LanguageConfig = field(
        default_factory=LanguageConfig, metadata={"help": "language allow-list and score"}
    )
    gopher_repetition: GopherRepetitionConfig = field(
        default_factory=GopherRepetitionConfig, metadata={"help": "Gopher repetition rules"}
    )
    gopher_quality: GopherQualityConfig = field(
        default_factory=GopherQualityConfig, metadata={"help": "Gopher quality rules"}
    )
    compression: CompressionConfig = field(
        default_factory=CompressionConfig, metadata={"help": "compression-ratio bounds"}
    )
    c4: C4Config = field(default_factory=C4Config, metadata={"help": "C4 line and document rules"})
    fineweb: FineWebConfig = field(
        default_factory=FineWebConfig, metadata={"help": "FineWeb's rules"}
    )
    perplexity: PerplexityConfig = field(
        default_factory=PerplexityConfig,
        metadata={"help": "CCNet's perplexity buckets under a model of a reference text"},
    )
    custom: tuple[CustomFilterConfig, ...] = field(
        default=(),
        metadata={
            "help": "filters of your own, one [[filters.custom]] table each, run after the "
            "built-in ones in the order listed"
        },
    )

    def __post_init__(self) -> None:
        """Check each field, then that each custom filter's name is its own."""
        super().__post_init__()
        taken = dict.fromkeys([family.name for family in FAMILIES], "a built-in filter")
        taken |= dict.fromkeys(_STEPS, "a step of the clean stage")
        for index, custom in enumerate(self.custom):
            if custom.name in taken:
                raise ConfigValueError(
                    f"custom[{index}].name",
                    custom.name,
                    f"is the name of {taken[custom.name]}; set another name",
                )
            taken[custom.name] = f"filters.custom[{index}]"


def build_filters(config: FiltersConfig) -> list[Filter]:
    """The enabled built-in filters in FAMILIES' order, then the custom ones in the config's."""
    return [*build_families(config), *build_custom(config)]


def build_families(
    config: FiltersConfig, reference_model: Location | None = None
) -> list[RuleFamily]:
    """The enabled built-in filters, in FAMILIES' order; the perplexity family measures with the
    model saved at `reference_model` (deciding needs none)."""
    sections = [(family, getattr(config, family.name)) for family in FAMILIES]
    return [
        Perplexity(section, reference_model) if family is Perplexity else family(section)
        for family, section in sections
        if section.enabled
    ]


def build_custom(config: FiltersConfig) -> list[Filter]:
    """The user's filters, in the config's order."""
    return [Custom(custom) for custom in config.custom]
