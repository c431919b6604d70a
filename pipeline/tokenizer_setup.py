"""The run's tokenizer, set up for the tokenize stage: `OUT/tokenizer.json` copied from
`tokenizer.path` or trained on the run's deduplicated documents (tokenizer/train.py, its options
kept in `OUT/tokenize/_done/train.json` so that a rerun reuses it), and its encoder loading on the
cluster. A given tokenizer is set up before dedup, so that a worker loads and checks its encoder
(half a second) in the gaps dedup leaves rather than every worker waiting for it afterwards."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import Client, Future

from corpusmill.core.atomic import atomic_path, write_json
from corpusmill.core.checksums import file_checksum
from corpusmill.core.errors import StageError
from corpusmill.core.storage import Location, open_input
from corpusmill.loader.format import Manifest
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.corpus import Corpus
from corpusmill.pipeline.shards import finished_manifest
from corpusmill.tokenizer.config import ShardsConfig, TokenizerConfig
from corpusmill.tokenizer.encode import Encoder, check_tokenizer_file, load_encoder
from corpusmill.tokenizer.train import save_tokenizer, train_tokenizer

log = logging.getLogger(__name__)

# Documents of the corpus the tiktoken conversion is checked on, besides its built-in cases, and
# the characters of each: enough text to meet the corpus's scripts, little enough to take no time.
_VERIFY_DOCS = 64
_VERIFY_CHARS = 4000
# The training options a trained tokenizer is reused for on a rerun.
_TRAIN_KEYS = ("vocab_size", "min_frequency", "special_tokens", "max_doc_chars", "sample_bytes")


@dataclass(frozen=True)
class RunTokenizer:
    """A run's tokenizer file and what the tokenize stage needs of it: its checksum, its training
    counts (None when it was given), the manifest of shards already finished with it, else its
    encoder loading on the cluster, and the seconds its set-up took."""

    config: TokenizerConfig
    path: Location
    digest: str
    trained: dict[str, Any] | None
    finished: Manifest | None
    encoder: Future | None
    seconds: float


def set_up_tokenizer(
    layout: RunLayout, config: TokenizerConfig, shards: ShardsConfig, client: Client
) -> RunTokenizer | None:
    """Copy or train the run's tokenizer (unless a rerun can reuse it) and, unless the shards are
    finished with it, start loading its encoder on `client`. None when the run has no tokenizer:
    neither tokenizer.path nor tokenizer.train is set."""
    started = time.perf_counter()
    if not config.path and not config.train:
        return None
    parts = layout.clean_parts()
    if not parts:
        raise StageError(f"tokenize: {layout.clean} holds no part; run the clean stage first")
    path, trained = _tokenizer_file(layout, config)
    digest = file_checksum(path)
    finished = finished_manifest(layout, digest, shards)
    encoder = None if finished else _submit_encoder(client, path, layout.clean_part(parts[0]))
    seconds = time.perf_counter() - started
    return RunTokenizer(config, path, digest, trained, finished, encoder, seconds)


def _tokenizer_file(
    layout: RunLayout, config: TokenizerConfig
) -> tuple[Location, dict[str, Any] | None]:
    """`OUT/tokenizer.json`, copied from tokenizer.path or trained (unless a rerun can reuse it),
    and the training counts when it was trained."""
    path = layout.tokenizer
    if config.path:
        source = Path(config.path)
        if not source.is_file():
            raise StageError(f"tokenize: tokenizer.path {source} does not exist")
        if not path.exists() or file_checksum(path) != file_checksum(source):
            check_tokenizer_file(source)
            with atomic_path(path) as tmp:
                shutil.copyfile(source, tmp)
        return path, None
    options = {key: _json_value(getattr(config, key)) for key in _TRAIN_KEYS}
    marker = layout.train_marker
    if marker.exists() and path.exists():
        record = json.loads(marker.read_text())
        if record["options"] == options and record["xxh3"] == file_checksum(path):
            log.info("tokenize: reusing the tokenizer trained by an earlier run, %s", path)
            return path, record["stats"]
    tokenizer, stats = train_tokenizer(Corpus([layout.root]), config)
    save_tokenizer(tokenizer, path)
    write_json(marker, {"options": options, "xxh3": file_checksum(path), "stats": stats})
    return path, stats


def _submit_encoder(client: Client, tokenizer: Location, first_part: Location) -> Future:
    """The encoder, built and checked by a task (after any other ready task), left on the
    cluster: the encode tasks take it from the worker that holds it."""
    return client.submit(_verified_encoder, tokenizer, first_part, pure=False, priority=-1)


def _verified_encoder(tokenizer: Location, first_part: Location) -> Encoder:
    """The encoder of `tokenizer`, checked on the first documents of the corpus too: those of its
    first clean part, dedup's removals included, so the check is the same before dedup ends."""
    with open_input(first_part) as source:
        batches = pq.ParquetFile(source).iter_batches(batch_size=_VERIFY_DOCS, columns=["text"])
        batch = next(batches, None)
    texts = pa.array([], pa.string()) if batch is None else batch.column("text")
    verify = pc.utf8_slice_codeunits(texts, 0, _VERIFY_CHARS).to_pylist()
    return load_encoder(tokenizer, verify=verify)


def _json_value(value: Any) -> Any:
    """A config value as it reads back from JSON (tuples become lists)."""
    return list(value) if isinstance(value, tuple) else value
