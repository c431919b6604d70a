"""A checkpoint is one .npz file: the weights, the model config and a reference to the tokenizer.

Weights are stored as `param/<name>` arrays; everything else (model config, tokenizer file and
xxh3, training options and results) is one JSON string under `meta`, so `numpy.load` reads the
file without pickle.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from corpusmill.loader.format import file_checksum
from corpusmill.pipeline.atomic import atomic_path
from corpusmill.train.model import GPT, ModelConfig

FORMAT_VERSION = 1
_PARAM = "param/"


class CheckpointError(ValueError):
    """A checkpoint or its tokenizer that cannot be used; the message names the file."""


def save_checkpoint(
    path: Path, model: GPT, tokenizer: dict[str, Any], info: dict[str, Any]
) -> None:
    """Write `model` atomically to `path` with its tokenizer reference ({"file", "xxh3",
    "eos_id"}) and `info` (JSON-serializable: training options and results)."""
    meta = {
        "format_version": FORMAT_VERSION,
        "model": dataclasses.asdict(model.config),
        "tokenizer": tokenizer,
        **info,
    }
    arrays = {_PARAM + name: value for name, value in model.params.items()}
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as handle:
        # A file object, because np.savez appends ".npz" to a path that lacks it.
        np.savez(handle, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)


def load_checkpoint(path: Path) -> tuple[GPT, dict[str, Any]]:
    """The model saved in `path` and its metadata (model config, tokenizer reference, info)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            params = {
                name.removeprefix(_PARAM): data[name]
                for name in data.files
                if name.startswith(_PARAM)
            }
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{path} is not a corpusmill checkpoint ({exc}); write one with `corpusmill train`"
        ) from None
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r}, this corpusmill reads format "
            f"{FORMAT_VERSION}: retrain it or use a matching corpusmill"
        )
    return GPT(ModelConfig(**meta["model"]), params), meta


def checkpoint_tokenizer(
    path: Path, meta: dict[str, Any], override: Path | None = None
) -> Tokenizer:
    """The tokenizer a checkpoint was trained with (or `override`), checked against its xxh3."""
    reference = meta["tokenizer"]
    file = Path(override or reference["file"])
    if not file.is_file():
        raise CheckpointError(
            f"{file}, the tokenizer of checkpoint {path}, does not exist: pass the run's "
            "tokenizer.json with --tokenizer"
        )
    if (digest := file_checksum(file)) != reference["xxh3"]:
        raise CheckpointError(
            f"{file} (xxh3 {digest}) is not the tokenizer checkpoint {path} was trained with "
            f"(xxh3 {reference['xxh3']}): pass that run's tokenizer.json with --tokenizer"
        )
    tokenizer = Tokenizer.from_file(str(file))
    # A prompt is text: a special token's string inside it is not the special token.
    tokenizer.encode_special_tokens = True
    return tokenizer
