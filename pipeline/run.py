"""`corpusmill run`: the stages in order on one Dask client, with their counts in OUT/stats.json."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from distributed import Client

from corpusmill.pipeline.atomic import remove_stale_temporaries, write_json, write_text
from corpusmill.pipeline.clean import run_clean
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import (
    ConfigError,
    RunConfig,
    config_to_toml,
    flat_config,
    load_config,
)
from corpusmill.pipeline.dedup.stage import run_dedup
from corpusmill.pipeline.tokenize import encoder_ahead, run_tokenize
from corpusmill.tokenizer.encode import check_tokenizer_file

log = logging.getLogger(__name__)

# Keys that say where a run executes, not what it writes: changing them never changes the output.
_PLACEMENT_KEYS = frozenset({"scheduler", "workers"})
# What a run writes into its output folder; --force removes exactly these.
_OUTPUTS = (
    "clean", "rejected", "dedup", "tokenize", "tokenizer.json", "index.json", "shard-*.arrow",
    "stats.json", "config.toml",
)  # fmt: skip


def run_pipeline(
    config: RunConfig, force: bool = False, client: Client | None = None
) -> dict[str, Any]:
    """Run every available stage on `config`; return and write the run's stats.

    Runs on `client`, or on the cluster the config names (a local one by default). An output
    folder holds one config's results: finished work is reused on a rerun with the same config,
    and a different config is refused unless `force`, which starts the folder afresh.
    """
    if config.tokenizer.path:
        # A broken or missing tokenizer is reported now, not after hours of cleaning.
        check_tokenizer_file(Path(config.tokenizer.path))
    if client is None:
        with dask_client(config.scheduler, config.workers) as own_client:
            return run_pipeline(config, force, own_client)
    out = Path(config.out)
    claim_output(out, config, force)
    if removed := remove_stale_temporaries(out):
        log.info("removed %d temporary files left by an interrupted run in %s", removed, out)
    stats = {"clean": run_clean(config, client)}
    early = encoder_ahead(out, config.tokenizer, config.shards, client)
    if config.dedup.enabled:
        stats["dedup"] = run_dedup(out, config.dedup, client)
    stats["tokenize"] = run_tokenize(out, config.tokenizer, config.shards, client, early)
    write_json(out / "stats.json", stats)
    return stats


def claim_output(out: Path, config: RunConfig, force: bool) -> None:
    """Record `config` as the output folder's config, refusing to mix it with another one's."""
    previous = out / "config.toml"
    if previous.exists():
        changed = changed_keys(load_config([previous]), config)
        if changed and not force:
            raise ConfigError(
                f"{out} holds the output of a different config (changed: {', '.join(changed)}); "
                "choose another --out, or pass --force to delete that output and start again"
            )
        if changed:
            log.warning("--force: removing the output of the previous config in %s", out)
            for path in [path for pattern in _OUTPUTS for path in out.glob(pattern)]:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
    write_text(previous, config_to_toml(config))


def changed_keys(old: RunConfig, new: RunConfig) -> list[str]:
    """The keys whose values differ between two configs, ignoring where the run executes."""
    before, after = flat_config(old), flat_config(new)
    return sorted(
        key
        for key in before.keys() | after.keys()
        if key not in _PLACEMENT_KEYS and before.get(key) != after.get(key)
    )
