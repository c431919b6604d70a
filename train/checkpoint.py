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

from corpusmill.core.atomic import atomic_path
from corpusmill.core.checksums import file_checksum
from corpusmill.core.errors import UserError
from corpusmill.core.storage import Location, location
from corpusmill.train.model import GPT, ModelConfig, param_shapes

FORMAT_VERSION = 1
_PARAM = "param/"
_DAMAGED = "the checkpoint is damaged: retrain it with `corpusmill train`"


class CheckpointError(UserError, ValueError):
    """A checkpoint or its tokenizer that cannot be used: the user's to replace or retrain; the
    message names the file."""


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
    """The model saved in `path` and its metadata (model config, tokenizer reference, info),
    checked: every weight its config needs, of that shape, finite, and nothing else."""
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
    except Exception as exc:  # damaged bytes raise many kinds: zipfile's, numpy's, json's
        raise CheckpointError(
            f"{path} is not a corpusmill checkpoint or is damaged ({exc}); write one with "
            "`corpusmill train`"
        ) from None
    config = _model_config(path, meta)
    _check_weights(path, config, params)
    return GPT(config, params), meta


def checkpoint_tokenizer(
    path: Path, meta: dict[str, Any], override: Location | None = None
) -> Tokenizer:
    """The tokenizer a checkpoint was trained with (or `override`), local or an object (a run's
    on S3), checked against its xxh3 and its vocabulary size: another tokenizer's ids mean other
    text, or lie outside the model's."""
    reference = meta["tokenizer"]
    file = location(override or reference["file"])
    if not file.is_file():
        raise CheckpointError(
            f"{file}, the tokenizer of checkpoint {path}, does not exist: pass the run's "
            "tokenizer.json with --tokenizer"
        )
    if (digest := file_checksum(file)) != reference["xxh3"]:
        raise CheckpointError(
            f"{file} (xxh3 {digest}) is not the tokenizer checkpoint {path} was trained with "
            f"(xxh3 {reference['xxh3']}): use the checkpoint with that run, or pass its "
            "tokenizer.json with --tokenizer"
        )
    tokenizer = Tokenizer.from_str(file.read_text(encoding="utf-8"))
    vocab_size = max(tokenizer.get_vocab(with_added_tokens=True).values()) + 1
    if vocab_size != meta["model"]["vocab_size"]:
        raise CheckpointError(
            f"{path}: its model reads {meta['model']['vocab_size']} token ids, its tokenizer "
            f"{file} has {vocab_size}; {_DAMAGED}"
        )
    # A prompt is text: a special token's string inside it is not the special token.
    tokenizer.encode_special_tokens = True
    return tokenizer


def _model_config(path: Path, meta: Any) -> ModelConfig:
    """The model config of a checkpoint's metadata, its format version and tokenizer reference
    checked on the way."""
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{path}: its metadata is a JSON {type(meta).__name__}, not an object; {_DAMAGED}"
        )
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r}, this corpusmill reads format "
            f"{FORMAT_VERSION}: retrain it or use a matching corpusmill"
        )
    model = meta.get("model")
    keys = sorted(item.name for item in dataclasses.fields(ModelConfig))
    try:
        # Every key, not the defaults of missing ones: a config must describe its weights.
        if not isinstance(model, dict) or sorted(model) != keys:
            raise TypeError(f"it must have the keys {', '.join(keys)}")
        config = ModelConfig(**model)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: its model config {json.dumps(model)} cannot be used ({exc}); {_DAMAGED}"
        ) from None
    reference = meta.get("tokenizer")
    fields = {"file": str, "xxh3": str, "eos_id": int}
    if not isinstance(reference, dict) or any(
        not isinstance(reference.get(key), kind) for key, kind in fields.items()
    ):
        raise CheckpointError(
            f"{path}: its tokenizer reference {json.dumps(reference)} lacks a file, xxh3 or "
            f"eos_id; {_DAMAGED}"
        )
    if not 0 <= reference["eos_id"] < config.vocab_size:
        raise CheckpointError(
            f"{path}: its EOS id {reference['eos_id']} is outside its vocabulary of "
            f"{config.vocab_size}; {_DAMAGED}"
        )
    return config


def _check_weights(path: Path, config: ModelConfig, params: dict[str, np.ndarray]) -> None:
    """Refuse weights that are missing, extra, of another shape than `config` needs, not
    floating point, or not finite (a model trained into NaN, or damaged)."""
    if config.n_layer > len(params):  # each layer has weights: 10**20 layers are not listed
        raise CheckpointError(
            f"{path}: its model config has {config.n_layer} layers, its file {len(params)} "
            f"weights; {_DAMAGED}"
        )
    expected = param_shapes(config)
    wrong = [f"missing {_PARAM}{name}" for name in sorted(expected.keys() - params.keys())]
    wrong += [f"unexpected {_PARAM}{name}" for name in sorted(params.keys() - expected.keys())]
    if wrong:
        raise CheckpointError(
            f"{path}: its weights do not match its model config ({', '.join(wrong[:3])}"
            + (f" and {len(wrong) - 3} more" if len(wrong) > 3 else "")
            + f"); {_DAMAGED}"
        )
    for name, shape in expected.items():
        weights = params[name]
        if weights.shape != shape or not np.issubdtype(weights.dtype, np.floating):
            raise CheckpointError(
                f"{path}: {_PARAM}{name} is {weights.dtype} of shape {weights.shape}, its model "
                f"config needs floats of shape {shape}; {_DAMAGED}"
            )
        if not np.isfinite(weights).all():
            raise CheckpointError(
                f"{path}: {_PARAM}{name} holds {int((~np.isfinite(weights)).sum())} NaN or "
                "infinite values; retrain the model (a lower --lr keeps it finite)"
            )
