"""The stages of a run, in order, and the one shape they share: a stage plans its tasks from the
run's layout and config, runs them on the run's Dask client, and returns its stats for
OUT/stats.json and what a later stage takes from it (a stage names the ones it needs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from distributed import Client

from corpusmill.core.errors import StageError
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.clean import run_clean
from corpusmill.pipeline.config import RunConfig
from corpusmill.pipeline.dataset import run_dataset
from corpusmill.pipeline.dedup.stage import run_dedup
from corpusmill.pipeline.lines import run_lines
from corpusmill.pipeline.readers import InputFile
from corpusmill.pipeline.refilter import finish_refilter
from corpusmill.pipeline.tokenize import tokenize
from corpusmill.pipeline.tokenizer_setup import set_up_tokenizer


@dataclass(frozen=True)
class RunContext:
    """What every stage of a run is given: the run folder's layout, the run's config, the input
    files it reads (found once, before the cluster started) and the client its tasks run on."""

    layout: RunLayout
    config: RunConfig
    files: tuple[InputFile, ...]
    client: Client


@dataclass(frozen=True)
class Finished:
    """The end of a stage: its stats, under its name in OUT/stats.json (None: no entry), and its
    product, which the later stages that name it in their `needs` are given."""

    stats: dict[str, Any] | None
    product: Any = None


class Stage(Protocol):
    """A stage of a run: `name` is its key in OUT/stats.json and in other stages' `needs`;
    `needs` names the earlier stages whose products `run` takes, by name."""

    name: str
    needs: tuple[str, ...]

    def run(self, context: RunContext, needed: Mapping[str, Any]) -> Finished: ...


def stages(config: RunConfig) -> list[Stage]:
    """The stages of a run of `config`, in order. A given tokenizer is set up right after clean,
    so that its encoder loads in the gaps dedup leaves; one trained in the run learns from the
    deduplicated documents, so it is set up after dedup, lines and the dataset. Lines are counted
    on the documents dedup kept, so that copies of a page do not make its lines frequent."""
    given = bool(config.tokenizer.path)
    dedup: list[Stage] = [DedupStage()] if config.dedup.enabled else []
    lines: list[Stage] = [LinesStage()] if config.lines.enabled else []
    return [
        CleanStage(),
        *([TokenizerStage()] if given else []),
        *dedup,
        *lines,
        DatasetStage(),
        *([] if given else [TokenizerStage()]),
        TokenizeStage(),
    ]


class CleanStage:
    """The input files cleaned and filtered into OUT/clean/ and OUT/rejected/ (clean.py), the
    finished parts first decided again from their signals if the run changed only thresholds
    (refilter.py); a run that keeps no document ends here."""

    name = "clean"
    needs: tuple[str, ...] = ()

    def run(self, context: RunContext, needed: Mapping[str, Any]) -> Finished:
        finish_refilter(context.layout, context.config, context.client)
        stats = run_clean(context.config, context.client, context.files, context.layout)
        _check_kept(stats, context.layout)
        return Finished(stats)


class TokenizerStage:
    """OUT/tokenizer.json copied or trained, and its encoder loading on the cluster
    (tokenizer_setup.py); its product is the RunTokenizer, or None without a tokenizer."""

    name = "tokenizer"
    needs: tuple[str, ...] = ()

    def run(self, context: RunContext, needed: Mapping[str, Any]) -> Finished:
        config, client = context.config, context.client
        tokenizer = set_up_tokenizer(context.layout, config.tokenizer, config.shards, client)
        return Finished(None, tokenizer)


class DedupStage:
    """Exact and near duplicates across OUT/clean/ found and listed in OUT/dedup/
    (dedup/stage.py)."""

    name = "dedup"
    needs: tuple[str, ...] = ()

    def run(self, context: RunContext, needed: Mapping[str, Any]) -> Finished:
        return Finished(run_dedup(context.layout.root, context.config.dedup, context.client))


class LinesStage:
    """Lines repeated in more than lines.max_docs kept documents found and listed in OUT/lines/
    (lines.py); every later stage reads the kept documents without them."""

    name = "lines"
    needs: tuple[str, ...] = ()

    def run(self, context: RunContext, needed: Mapping[str, Any]) -> Finished:
        return Finished(run_lines(context.layout, context.config.lines, context.client))


class DatasetStage:
    """The documents dedup kept, as Parquet in OUT/dataset/ (dataset.py)."""

    name = "dataset"
    needs: tuple[str, ...] = ()

    def run(self, context: RunContext, needed: Mapping[str, Any]) -> Finished:
        return Finished(run_dataset(context.layout.root, context.client))


class TokenizeStage:
    """The documents dedup kept, encoded with the tokenizer stage's tokenizer into shards and
    their manifest (tokenize.py)."""

    name = "tokenize"
    needs = ("tokenizer",)

    def run(self, context: RunContext, needed: Mapping[str, Any]) -> Finished:
        shards = context.config.shards
        return Finished(tokenize(context.layout, needed["tokenizer"], shards, context.client))


def _check_kept(clean: dict[str, Any], layout: RunLayout) -> None:
    """Raise StageError if the clean stage kept no document, naming the commonest reasons."""
    if clean["kept"]["docs"]:
        return
    reasons = sorted(clean["rejected"].items(), key=lambda item: (-item[1]["docs"], item[0]))
    named = ", ".join(f"{reason}: {counts['docs']}" for reason, counts in reasons[:3])
    raise StageError(
        f"clean: none of the {clean['read']['docs']} documents read was kept (most rejected as "
        f"{named}); see the documents and their reasons in {layout.rejected}, and "
        "loosen the settings that rejected them"
    )
