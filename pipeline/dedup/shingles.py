"""Dedup step 3, a task per clean part when near pairs are verified: the shingle sets of the
part's documents that are in a near candidate pair -> shingles/part-N.arrow."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from distributed import Client, Future

from corpusmill.core.errors import StageError
from corpusmill.core.storage import Location, open_input
from corpusmill.pipeline.cluster import collected
from corpusmill.pipeline.dedup.candidates import Candidates, key_files
from corpusmill.pipeline.dedup.config import DedupConfig
from corpusmill.pipeline.dedup.files import DedupFiles
from corpusmill.pipeline.dedup.hashing import shingle_hashes, shingle_sets
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.shuffle import read_range, write_sorted

_SETS = pa.large_list(pa.uint32())


def submit_shingles(
    client: Client, files: DedupFiles, config: DedupConfig, candidates: Sequence[Future]
) -> list[Future]:
    """A future of each clean part's shingles file, in part order, from every bucket's
    Candidates."""
    every = collected(client, candidates)
    return [
        client.submit(shingles_task, part, every, files, config, pure=False) for part in files.parts
    ]


def shingles_task(
    part: int, candidates: Sequence[Candidates], files: DedupFiles, config: DedupConfig
) -> Location:
    """Write the shingle sets of the part's documents that are in a near candidate pair.
    Memory: one row group's texts, and the sets (4 bytes per shingle)."""
    low, high = part << ROW_BITS, (part + 1) << ROW_BITS
    touched = read_range(key_files(candidates), low, high)
    near = touched.filter(touched.column("near")).column("key").to_numpy()
    rows = np.unique(near - (np.int64(part) << ROW_BITS))
    source = files.clean(part)
    keys, sets = [], []
    try:
        with open_input(source) as handle:
            parquet = pq.ParquetFile(handle)
            first = 0
            for group in range(parquet.num_row_groups):
                size = parquet.metadata.row_group(group).num_rows
                wanted = rows[(rows >= first) & (rows < first + size)]
                if len(wanted):
                    texts = parquet.read_row_group(group, columns=["text"]).column("text")
                    shingles = shingle_hashes(texts.take(wanted - first), config.shingle_size)
                    sets.append(shingle_sets(shingles))
                    keys.append(wanted + (np.int64(part) << ROW_BITS))
                first += size
    except (OSError, pa.ArrowException) as exc:
        raise StageError(f"dedup: cannot read {source} ({exc}); rerun the clean stage") from exc
    path = files.file("shingles", part)
    write_sorted(
        path,
        pa.table(
            {
                "key": pa.array(np.concatenate(keys) if keys else [], pa.int64()),
                "shingles": pa.concat_arrays(sets) if sets else pa.array([], _SETS),
            }
        ),
    )
    return path
