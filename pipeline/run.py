"""`corpusmill run`: the checks a run needs, then its stages (stages.py) in order on one Dask
client, with their counts in OUT/stats.json.

An output folder holds one run: its effective config (`OUT/config.toml`) and the files it read
(`OUT/inputs.json`: each one's source, size and modification time). A rerun of the same config
on the same files resumes the run; one changing only filter thresholds decides the clean parts
again from their stored signals (refilter.py), then makes the later stages again; any other is
refused, and `--force` starts the folder afresh.
`OUT/run.lock` keeps a second run out of the folder while one runs.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from distributed import Client

from corpusmill.core.atomic import folder_lock, remove_stale_temporaries, write_json, write_text
from corpusmill.core.errors import ConfigError, StageError
from corpusmill.core.storage import (
    Location,
    check_storage,
    location,
    remove,
    storage_options,
)
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.cluster import check_scheduler, dask_client, release_memory
from corpusmill.pipeline.config import RunConfig, changed_keys, config_to_toml, load_config
from corpusmill.pipeline.readers import InputFile, discover_inputs, printable
from corpusmill.pipeline.reference import prepare_reference_model
from corpusmill.pipeline.refilter import refilter_refusal, refilterable, start_refilter
from corpusmill.pipeline.stages import RunContext, stages
from corpusmill.pipeline.worker_storage import credentials_on_workers
from corpusmill.tokenizer.encode import check_tokenizer_file

log = logging.getLogger(__name__)

# How many names of added, removed or changed inputs a refusal lists.
_NAMED_INPUTS = 3


class PreparedRun(NamedTuple):
    """A run whose checks passed: its config, the input files it reads, found once, its output
    folder's layout (local or on an object store) and the storage options that reach them."""

    config: RunConfig
    files: list[InputFile]
    layout: RunLayout
    options: dict[str, Any]


def run_pipeline(
    config: RunConfig, force: bool = False, client: Client | None = None
) -> dict[str, Any]:
    """Check and claim the output folder, then run every available stage on `config`; return
    and write the run's stats.

    Runs on `client`, or on the cluster the config names (a local one by default), started only
    once every check that needs no cluster has passed.
    """
    with prepared_run(config, force) as run:
        if client is not None:
            return run_stages(run, client)
        with dask_client(config.scheduler, config.workers) as own_client:
            return run_stages(run, own_client)


@contextlib.contextmanager
def prepared_run(config: RunConfig, force: bool = False) -> Iterator[PreparedRun]:
    """Check everything a run needs but its cluster, find its input files, then hold the output
    folder's lock and claim the folder for `config` and those files while the block runs.

    The scheduler's address, the tokenizer, the object stores' buckets and the inputs are
    checked first, so that a mistake is reported in a second, not after the cluster started or
    hours of cleaning.
    """
    if config.scheduler:
        check_scheduler(config.scheduler)
    if config.tokenizer.path:
        check_tokenizer_file(Path(config.tokenizer.path))
    options = storage_options(config.storage)
    check_storage([config.out, *config.inputs], options)
    files = discover_inputs(config.inputs, config.read, out=config.out, options=options)
    layout = RunLayout(location(config.out, options))
    with contextlib.ExitStack() as held:
        try:
            layout.root.mkdir(parents=True, exist_ok=True)
            held.enter_context(folder_lock(layout.lock))
            _claim_output(layout, config, _inputs_record(files), force)
        except OSError as exc:
            raise _output_error(layout.root, exc) from None
        if config.filters.perplexity.enabled:
            # Trained here, once, so that a bad reference is reported before the cluster starts.
            perplexity = config.filters.perplexity
            prepare_reference_model(perplexity, config.read, layout.reference_model, options)
        yield PreparedRun(config, files, layout, options)


def run_stages(run: PreparedRun, client: Client) -> dict[str, Any]:
    """Run the stages of a prepared run in order on `client`, each given the products of the
    earlier stages it needs; return and write the run's stats."""
    context = RunContext(run.layout, run.config, tuple(run.files), client)
    stats: dict[str, Any] = {}
    products: dict[str, Any] = {}
    with credentials_on_workers(client, run.options):
        for stage in stages(run.config):
            finished = stage.run(context, {name: products[name] for name in stage.needs})
            release_memory(client)
            products[stage.name] = finished.product
            if finished.stats is not None:
                stats[stage.name] = finished.stats
    write_json(context.layout.stats, stats)
    return stats


def _claim_output(
    layout: RunLayout, config: RunConfig, inputs: list[dict[str, Any]], force: bool
) -> None:
    """Record `config` and `inputs` as the output folder's run, refusing to mix them with another
    run's output unless `force`, which deletes every output of a previous run first. A config
    that changes only filter thresholds is the same run decided again: its clean parts are
    marked, and the clean stage decides them from their stored signals (refilter.py)."""
    out = layout.root
    if force:
        if removed := _remove_outputs(layout):
            log.warning("--force: removed %d outputs of the previous run in %s", removed, out)
    elif (rerun := _compare(layout, config, inputs)).refused:
        raise ConfigError(
            f"{out} holds the output of another run ({'; '.join(rerun.refused)}); choose another "
            "--out, or pass --force to delete that output and start again"
        )
    elif rerun.thresholds:
        log.info(
            "only filter thresholds changed (%s): the clean parts in %s are decided again from "
            "their stored signals, without reading the inputs",
            ", ".join(rerun.thresholds),
            out,
        )
        start_refilter(layout, rerun.thresholds)
    if removed := _remove_temporaries(layout):
        log.info("removed %d temporary files left by an interrupted run in %s", removed, out)
    write_json(layout.inputs, {"files": inputs})
    write_text(layout.config, config_to_toml(config))


def _inputs_record(files: Sequence[InputFile]) -> list[dict[str, Any]]:
    """What a run reads, to tell a rerun on other files: each file's source, URL (printable, like
    its source), size and version (its modification time, or an object store's ETag)."""
    return [
        {
            "source": file.source,
            "url": printable(file.url),
            "size": file.size,
            "modified": file.modified,
        }
        for file in files
    ]


class _Rerun(NamedTuple):
    """How the run recorded in a folder differs from this one: what makes it another run's
    output, and the changed filter thresholds its stored signals decide."""

    refused: list[str]
    thresholds: list[str]


def _compare(layout: RunLayout, config: RunConfig, inputs: list[dict[str, Any]]) -> _Rerun:
    """Compare the run recorded in `layout` with this one: its changed config keys and inputs
    added, removed or changed. Changed thresholds alone are decided again if refilter.py can
    (why not is named otherwise). Nothing for a folder that holds no run's results, such as
    one claimed by a run that stopped before its cluster started."""
    results = [path.name for path in layout.results()]
    if not results:
        return _Rerun([], [])
    if not layout.config.exists():
        return _Rerun([f"{_some(results)}, and no {layout.config.name} of theirs"], [])
    try:
        previous = load_config([layout.config])
    except ConfigError as exc:
        return _Rerun([f"its config cannot be read: {exc}"], [])
    changed = changed_keys(previous, config)
    named = [f"changed: {', '.join(changed)}"] if changed else []
    try:
        before = json.loads(layout.inputs.read_text(encoding="utf-8"))["files"]
        old = {file["source"]: (file["size"], file["modified"]) for file in before}
    except (OSError, ValueError, KeyError, TypeError):
        return _Rerun([*named, f"no readable record of its inputs in {layout.inputs}"], [])
    new = {file["source"]: (file["size"], file["modified"]) for file in inputs}
    changed_inputs = {source for source in old.keys() & new.keys() if old[source] != new[source]}
    differences = []
    for what, sources in (
        ("inputs added", new.keys() - old.keys()),
        ("inputs removed", old.keys() - new.keys()),
        ("inputs changed", changed_inputs),
    ):
        if sources:
            differences.append(f"{what}: {_some(sorted(sources))}")
    if differences or not changed or not all(map(refilterable, changed)):
        return _Rerun(named + differences, [])
    if why := refilter_refusal(layout, previous, config):
        return _Rerun([*named, why], [])
    return _Rerun([], changed)


def _some(names: Sequence[str]) -> str:
    """The first few names, then how many more there are."""
    shown = ", ".join(names[:_NAMED_INPUTS])
    more = len(names) - _NAMED_INPUTS
    return f"{shown} and {more} more" if more > 0 else shown


def _remove_outputs(layout: RunLayout) -> int:
    """Delete everything a run writes into its folder (and nothing else); return how many paths."""
    paths = layout.outputs()
    for path in paths:
        remove(path)
    return len(paths)


def _remove_temporaries(layout: RunLayout) -> int:
    """Delete the temporaries a killed run left among its outputs: in its folders, and beside
    its files at the top of its folder."""
    folders = [path for path in layout.outputs() if path.is_dir()]
    return remove_stale_temporaries(layout.root, recursive=False) + sum(
        remove_stale_temporaries(folder) for folder in folders
    )


def _output_error(out: Location, exc: OSError) -> Exception:
    """An output folder that cannot be written, as one line: the user's mistake (a file, no
    permission, a read-only disk) is a ConfigError, the environment's (a full disk) a StageError."""
    reason = exc.strerror or str(exc)
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return ConfigError(f"--out {out} is a file or inside one; choose a folder")
    if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
        return ConfigError(f"cannot write to --out {out} ({reason}); choose another folder")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StageError(f"no space left for --out {out}; free some, or choose another folder")
    return StageError(f"cannot write to --out {out} ({reason}); check its disk")
