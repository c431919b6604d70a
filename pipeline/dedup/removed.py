"""Dedup step 7: each removed document given its cluster's kept id, a task per clean part ->
removed/part-N.arrow (which the tokenize stage reads part by part); then all of them, in input
order, -> removed.parquet."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from distributed import Client, Future

from corpusmill.core.atomic import atomic_path
from corpusmill.core.storage import Location
from corpusmill.pipeline.cluster import collected
from corpusmill.pipeline.dedup.clusters import Clustered
from corpusmill.pipeline.dedup.files import DedupFiles, rows_of
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.shuffle import read_table, write_sorted
from corpusmill.pipeline.schema import REMOVED


def submit_removed(client: Client, files: DedupFiles, clustered: Sequence[Future]) -> Future:
    """A future of removed.parquet written, from every clean part's Clustered."""
    every = collected(client, clustered)
    kept = [client.submit(kept_ids_task, part, every, files, pure=False) for part in files.parts]
    return client.submit(write_removed, kept, files.run.removed, pure=False)


def kept_ids_task(part: int, clustered: Sequence[Clustered], files: DedupFiles) -> Location:
    """Add the kept document's id to each removed document of the part, from the roots files of
    the parts holding its clusters' kept documents. Memory: the part's removed rows."""
    by_part = dict(zip(files.parts, clustered, strict=True))
    removed = read_table(by_part[part].clusters)
    cluster = removed.column("cluster").to_numpy()
    distinct, index = np.unique(cluster, return_inverse=True)
    found = [pa.array([], pa.string())]
    for root_part in np.unique(distinct >> ROW_BITS).tolist():
        path = by_part[root_part].roots
        roots = read_table(path)
        wanted = distinct[(distinct >> ROW_BITS) == root_part]
        rows = rows_of(roots.column("key").to_numpy(), wanted, path)
        found.append(roots.column("id").take(rows).combine_chunks())
    kept_ids = pa.concat_arrays(found).take(index)
    path = files.file("removed", part)
    write_sorted(path, removed.append_column("kept_id", kept_ids))
    return path


def write_removed(parts: Sequence[Location], path: Location) -> Location:
    """Concatenate the parts' removed rows, in the order given, into `path` (removed.parquet)."""
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, REMOVED, compression="zstd") as writer:
        for part in parts:
            rows = read_table(part)
            if rows.num_rows:
                writer.write_table(rows.select(REMOVED.names).cast(REMOVED))
    return path
