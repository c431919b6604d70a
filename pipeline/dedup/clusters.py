"""Dedup step 6, a task per clean part: its removed documents (key, id, kind, cluster) ->
clusters/part-N.arrow, and its clusters' kept documents (key, id) -> roots/part-N.arrow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import Client, Future

from corpusmill.core.errors import StageError
from corpusmill.core.storage import Location, open_input
from corpusmill.pipeline.dedup.candidates import Candidates, key_files
from corpusmill.pipeline.dedup.files import DedupFiles
from corpusmill.pipeline.dedup.keys import ROW_BITS
from corpusmill.pipeline.dedup.shuffle import read_range, read_table, write_sorted
from corpusmill.pipeline.dedup.signatures import Signed


class Clustered(NamedTuple):
    """A part's removed documents and its cluster roots, and the documents and bytes it removes
    per kind (exact, near)."""

    clusters: Location
    roots: Location
    removed: dict[str, dict[str, int]]


def submit_clusters(
    client: Client,
    files: DedupFiles,
    signed: Sequence[Future],
    candidates: Sequence[Future],
    components: Sequence[Location],
) -> list[Future]:
    """A future of each clean part's Clustered, from its Signed, every bucket's Candidates and
    the components files."""
    return [
        client.submit(clusters_task, part, sizes, candidates, components, files, pure=False)
        for part, sizes in zip(files.parts, signed, strict=True)
    ]


def clusters_task(
    part: int,
    signed: Signed,
    candidates: Sequence[Candidates],
    components: Sequence[Location],
    files: DedupFiles,
) -> Clustered:
    """Write the part's removed documents (key, id, kind, cluster) and its clusters' kept
    documents (key, id); return them and the removed documents and bytes per kind.
    Memory: the part's ids."""
    low, high = part << ROW_BITS, (part + 1) << ROW_BITS
    labelled = read_range(components, low, high)
    order = pc.sort_indices(labelled, [("key", "ascending")])
    key = labelled.column("key").to_numpy()[order.to_numpy()]
    cluster = labelled.column("cluster").to_numpy()[order.to_numpy()]
    touched = read_range(key_files(candidates), low, high)
    earlier_copy = touched.filter(touched.column("exact")).column("key").to_numpy()
    source = files.clean(part)
    try:
        with open_input(source) as handle:
            ids = pq.read_table(handle, columns=["id"]).column("id")
    except (OSError, pa.ArrowException) as exc:
        raise StageError(f"dedup: cannot read {source} ({exc}); rerun the clean stage") from exc
    rows = key - low
    removed = cluster != key
    exact = np.isin(key, earlier_copy)
    kind = np.where(exact, "exact", "near")
    written = Clustered(files.file("clusters", part), files.file("roots", part), {})
    write_sorted(
        written.roots,
        pa.table({"key": key[~removed], "id": ids.take(rows[~removed])}),
    )
    write_sorted(
        written.clusters,
        pa.table(
            {
                "key": key[removed],
                "id": ids.take(rows[removed]),
                "kind": pa.array(kind[removed], pa.string()),
                "cluster": cluster[removed],
            }
        ),
    )
    sizes = read_table(signed.sizes).column("bytes").to_numpy()[rows]
    counts = {
        name: {"docs": int((removed & which).sum()), "bytes": int(sizes[removed & which].sum())}
        for name, which in (("exact", exact), ("near", ~exact))
    }
    return written._replace(removed=counts)
