"""`corpusmill run`: the stages in order on one Dask client, with their counts in OUT/stats.json."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from corpusmill.pipeline.atomic import write_json, write_text
from corpusmill.pipeline.clean import run_clean
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import RunConfig, config_to_toml

log = logging.getLogger(__name__)


def run_pipeline(config: RunConfig) -> dict[str, Any]:
    """Run every available stage on `config`; return and write the run's stats."""
    out = Path(config.out)
    write_text(out / "config.toml", config_to_toml(config))
    with dask_client(config.scheduler, config.workers) as client:
        stats = {"clean": run_clean(config, client)}
    write_json(out / "stats.json", stats)
    return stats
