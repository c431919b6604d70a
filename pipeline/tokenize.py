"""The tokenize stage: the documents dedup kept, encoded into Arrow shards and their manifest.

1. The run's tokenizer, copied or trained, and its encoder loading on the cluster
   (tokenizer_setup.py; `corpusmill run` sets a given tokenizer up while dedup runs).
2. A task per clean part encodes its kept documents (encode.py), the validation split's apart
   (loader/split.py: `shards.validation_fraction` of the documents, by a hash of their ids).
3. A task per shard writes the planned shards of each split (shards.py).
4. `OUT/tokenizer_config.json` and `OUT/special_tokens_map.json` (tokenizer/hf_files.py), for
   transformers, then `OUT/index.json` (loader/format.py) last; then the encoded parts are deleted.

A rerun redoes only the steps whose markers are missing or name another tokenizer; when index.json
names the same tokenizer, shard size and validation fraction, it only writes the files for
transformers again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from distributed import Client

from corpusmill.core.atomic import write_text
from corpusmill.core.errors import StageError
from corpusmill.core.storage import Location, location
from corpusmill.loader.format import Manifest, token_type
from corpusmill.loader.layout import RunLayout
from corpusmill.loader.split import VALIDATION
from corpusmill.pipeline.encode import encode_parts, encoded_lengths, encoder_facts
from corpusmill.pipeline.shards import remove_leftovers, write_shards
from corpusmill.pipeline.tokenizer_setup import RunTokenizer, set_up_tokenizer
from corpusmill.tokenizer.config import ShardsConfig, TokenizerConfig
from corpusmill.tokenizer.hf_files import write_transformers_files

log = logging.getLogger(__name__)


def run_tokenize(
    out: str | Location, config: TokenizerConfig, shards: ShardsConfig, client: Client
) -> dict[str, Any]:
    """Set up the run's tokenizer, then tokenize its deduplicated documents into
    `OUT/shard-*.arrow` and `OUT/index.json`; return the stage's stats."""
    layout = RunLayout(location(out))
    return tokenize(layout, set_up_tokenizer(layout, config, shards, client), shards, client)


def tokenize(
    layout: RunLayout, tokenizer: RunTokenizer | None, shards: ShardsConfig, client: Client
) -> dict[str, Any]:
    """Tokenize a run's deduplicated documents with its set-up `tokenizer` (skipped without one)
    into `OUT/shard-*.arrow` and `OUT/index.json`; return the stage's stats."""
    started = time.perf_counter()
    if tokenizer is None:
        log.info("tokenize: skipped; set tokenizer.path, or tokenizer.train = true")
        return {"skipped": True}
    config = tokenizer.config
    parts = layout.clean_parts()
    if tokenizer.finished:
        log.info("tokenize: %s is complete for this tokenizer; nothing to do", layout.manifest)
        write_transformers_files(tokenizer.path, config)
        return _stats(layout, parts, tokenizer.finished, tokenizer, started)
    encoder = tokenizer.encoder
    facts = client.submit(encoder_facts, encoder, config.eos, pure=False)
    backend, vocab_size, eos_id = facts.result()
    if eos_id is None:
        raise StageError(
            f"tokenize: {config.path or tokenizer.path} has no token {config.eos!r}; set "
            "tokenizer.special_tokens so that its first entry is the tokenizer's end-of-text token"
        )
    tokens = token_type(vocab_size)
    digest = tokenizer.digest
    fraction = shards.validation_fraction
    encoded = encode_parts(
        layout, parts, fraction, encoder, backend, eos_id, tokens, digest, client
    )
    infos = {
        split: write_shards(
            layout,
            split,
            files,
            encoded_lengths(layout, parts, split),
            shards.tokens_per_shard,
            tokens,
            digest,
            client,
        )
        for split, files in encoded.items()
    }
    manifest = Manifest(
        tokenizer=layout.tokenizer.name,
        tokenizer_xxh3=digest,
        vocab_size=vocab_size,
        token_dtype=str(tokens),
        eos_id=eos_id,
        tokens_per_shard=shards.tokens_per_shard,
        shards=tuple(infos["train"]),
        validation=tuple(infos.get(VALIDATION, ())),
        validation_fraction=fraction,
    )
    write_transformers_files(tokenizer.path, config)
    write_text(layout.manifest, manifest.to_json())
    remove_leftovers(layout, (path for files in encoded.values() for path in files), manifest)
    return _stats(layout, parts, manifest, tokenizer, started)


def _stats(
    layout: RunLayout,
    parts: Sequence[int],
    manifest: Manifest,
    tokenizer: RunTokenizer,
    started: float,
) -> dict[str, Any]:
    """The stage's counts: the manifest's totals, and what the part markers and training say;
    its seconds include the tokenizer's set-up."""
    markers = [json.loads(layout.encoded_marker(part).read_text()) for part in parts]
    validation = {"validation": manifest.totals(VALIDATION)} if manifest.validation_fraction else {}
    return {
        **manifest.totals(),
        **validation,
        "removed_by_dedup": sum(marker["removed"] for marker in markers),
        "backend": ", ".join(sorted({marker["backend"] for marker in markers})),
        "vocab_size": manifest.vocab_size,
        "token_dtype": manifest.token_dtype,
        "train": tokenizer.trained,
        "seconds": round(tokenizer.seconds + time.perf_counter() - started, 3),
    }
