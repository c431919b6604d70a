"""Global deduplication: exact hashes and MinHash-LSH near duplicates, on Dask.

`stage.run_dedup` runs it; `DedupConfig` is importable from here without loading the stage.
"""

from corpusmill.pipeline.dedup.config import DedupConfig

__all__ = ["DedupConfig"]
