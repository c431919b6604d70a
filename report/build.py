"""Assemble the compression report of a run: every figure in bits per UTF-8 byte of the held-out
documents and as a compression ratio (bytes in / bytes out = 8 / bits per byte)."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from corpusmill.core.storage import Location, location
from corpusmill.loader.format import MissingRunError, read_manifest, run_tokenizer
from corpusmill.pipeline.ngram import KneserNey
from corpusmill.pipeline.readers import InputError
from corpusmill.report.compressors import compressed_sizes, train_dictionary
from corpusmill.report.config import ReportConfig
from corpusmill.report.entropy import bits_per_byte, entropy_bits
from corpusmill.report.predict import NextTokenModel, code_documents
from corpusmill.report.sample import held_out_split, validation_fraction
from corpusmill.report.stages import stage_compression
from corpusmill.tokenizer.encode import Encoder, load_encoder

if TYPE_CHECKING:
    from dask.distributed import Client

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"
_NGRAM_NAMES = {1: "unigram", 2: "bigram", 3: "trigram"}


def build_report(
    out: Location | str,
    config: ReportConfig,
    tokenizer: Path | None = None,
    model: NextTokenModel | None = None,
    checkpoint: dict[str, Any] | None = None,
    client: Client | None = None,
    documents: Path | None = None,
) -> dict[str, Any]:
    """The report of run folder `out` (local, or an object store's URL) as a JSON-ready dict. The
    tokenizer is the one the run's manifest names, else `tokenizer`; `model` (a trained model)
    and its `checkpoint` (file bytes, parameters, held-out set and training history) are
    optional; with a Dask `client`, the raw vs clean vs deduplicated comparison of the whole run
    is added, each clean document's figures written to the local folder `documents`."""
    started = time.perf_counter()
    out = location(out)
    held, train = held_out_split(out, config.held_out_bytes, config.train_bytes)
    if not train.num_rows:
        raise InputError(
            f"{out}: every document is held out, none is left to fit models on; lower "
            f"--held-out-bytes (now {config.held_out_bytes})"
        )
    texts = held["text"].to_pylist()
    held_bytes = [text.encode() for text in texts]
    train_bytes = [text.encode() for text in train["text"].to_pylist()]
    num_bytes = sum(len(data) for data in held_bytes)
    report: dict[str, Any] = {
        "sample": {
            "held_out": {
                "docs": len(texts),
                "bytes": num_bytes,
                "chars": sum(map(len, texts)),
                "held_out_bytes": config.held_out_bytes,
                "validation_fraction": validation_fraction(out),
                "ids": held["id"].to_pylist(),
            },
            "train": {"docs": len(train_bytes), "bytes": sum(map(len, train_bytes))},
        }
    }
    dictionary = train_dictionary(train_bytes, config.dictionary_bytes)
    report["compressors"] = {
        name: {way: _figure(size * 8, num_bytes) | {"bytes": size} for way, size in sizes.items()}
        for name, sizes in compressed_sizes(held_bytes, dictionary).items()
    }
    encoder, eos_id, tokenizer_file = _encoder(out, tokenizer, texts)
    held_tokens = encoder.encode(texts)
    train_tokens = encoder.encode(train["text"])
    report["tokenizer"] = _tokenizer_section(
        encoder, tokenizer_file, held_tokens, train_tokens, texts, num_bytes, config.top_tokens
    )
    report["models"] = _models_section(
        config, encoder, eos_id, held_tokens, train_tokens, texts, num_bytes, model
    )
    if checkpoint is not None and "trained model" in report["models"]:
        report["description_length"] = description_length(
            checkpoint,
            report["models"]["trained model"],
            report["compressors"],
            num_bytes,
            len(dictionary.as_bytes()) if dictionary is not None else 0,
        )
        report["training_curve"] = training_curve(checkpoint, report["sample"]["held_out"])
    if client is not None and documents is not None:
        try:
            report["stages"] = stage_compression(out, client, documents)
        except InputError as exc:
            log.warning("report: no raw vs clean comparison: %s", exc)
            report["stages"] = {"skipped": str(exc)}
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report


def description_length(
    checkpoint: dict[str, Any],
    trained: dict[str, Any],
    compressors: dict[str, Any],
    num_bytes: int,
    dictionary_bytes: int = 0,
) -> dict[str, Any]:
    """A model compresses only with its parameters at hand: the checkpoint's bytes plus the coded
    held-out text is its total description, set beside zstd -19's (one stream), and the corpus
    size at which the bytes it saves over zstd pay for its own size: the adjusted compression
    rate of Delétang et al. (2023), "Language Modeling Is Compression"."""
    model_bytes, coded = checkpoint["bytes"], trained["coded_bytes"]
    zstd = compressors["zstd -19"]["stream"]["bytes"]
    model_bpb = coded * 8 / num_bytes
    zstd_bpb = zstd * 8 / num_bytes
    result = {
        "model_bytes": model_bytes,
        "params": checkpoint["params"],
        "coded_bytes": coded,
        "total_bytes": model_bytes + coded,
        "zstd -19 bytes": zstd,
        "raw_bytes": num_bytes,
        "adjusted_rate": round((model_bytes + coded) / num_bytes, 4),
        "zstd_rate": round(zstd / num_bytes, 4),
        "break_even_bytes": break_even_bytes(model_bytes, model_bpb, zstd_bpb),
    }
    if dictionary := compressors.get("zstd -19 + dictionary"):
        # zstd's dictionary is its model: it too is needed to decompress.
        result["zstd dictionary bytes"] = dictionary_bytes
        result["zstd + dictionary total_bytes"] = dictionary["stream"]["bytes"] + dictionary_bytes
    return result


def break_even_bytes(model_bytes: int, model_bpb: float, zstd_bpb: float) -> int | None:
    """Bytes of text from which a model of `model_bytes` coding at `model_bpb` takes less room,
    itself included, than zstd at `zstd_bpb`: model + N m / 8 <= N z / 8, so N = 8 model / (z - m);
    None when the model codes no better than zstd and never pays for itself."""
    if model_bpb >= zstd_bpb:
        return None
    return math.ceil(8 * model_bytes / (zstd_bpb - model_bpb))


def training_curve(checkpoint: dict[str, Any], held_out: dict[str, Any]) -> dict[str, Any]:
    """The coded size of the held-out text at each evaluation of training (its cross-entropy,
    which the coder matches within 0.01 %), against the steps and tokens seen; `same_held_out`
    says whether training evaluated these same documents."""
    theirs = checkpoint.get("held_out") or {}
    return {
        "same_held_out": theirs.get("ids") == held_out["ids"],
        "points": [
            {
                "step": entry["step"],
                "tokens_seen": entry.get("tokens_seen"),
                "bits_per_byte": entry["eval_bpb"],
                "coded_bytes": round(entry["eval_bpb"] * theirs.get("bytes", 0) / 8),
            }
            for entry in checkpoint["history"]
        ],
    }


def _figure(bits: float, num_bytes: int) -> dict[str, float]:
    """Bits per byte and the compression ratio of `bits` spent on `num_bytes` bytes."""
    bpb = bits_per_byte(bits, num_bytes)
    return {"bits_per_byte": round(bpb, 4), "ratio": round(8 / bpb, 4) if bpb else float("inf")}


def report_tokenizer(
    out: Location | str, tokenizer: Path | None = None
) -> tuple[Location, int | None]:
    """The tokenizer file a report of run folder `out` encodes with, the one its manifest names,
    else `tokenizer`; and the manifest's EOS id (None without a manifest)."""
    try:
        manifest = read_manifest(out)
    except MissingRunError:
        if tokenizer is None:
            raise InputError(
                f"{out} has no tokenized shards (index.json): pass a tokenizer.json with "
                "--tokenizer, or run the tokenize stage"
            ) from None
        return Path(tokenizer), None
    return run_tokenizer(out, manifest), manifest.eos_id


def _encoder(
    out: Location, tokenizer: Path | None, texts: list[str]
) -> tuple[Encoder, int, Location]:
    """The run's encoder (its manifest's tokenizer, else `tokenizer`) and its EOS id."""
    path, eos_id = report_tokenizer(out, tokenizer)
    encoder = load_encoder(path, verify=texts[:16])
    eos_id = encoder.token_id(EOS) if eos_id is None else eos_id
    if eos_id is None:
        raise InputError(f"{path} has no {EOS} token to end documents with")
    return encoder, eos_id, path


def _tokenizer_section(
    encoder: Encoder,
    path: Location,
    held: list[np.ndarray],
    train: list[np.ndarray],
    texts: list[str],
    num_bytes: int,
    top: int,
) -> dict[str, Any]:
    """Bytes and characters per token on the held-out part, and how much of the vocabulary the
    sample uses."""
    held_counts = np.bincount(np.concatenate(held), minlength=encoder.vocab_size)
    all_counts = held_counts + np.bincount(
        np.concatenate(train or [np.empty(0, np.uint32)]), minlength=encoder.vocab_size
    )
    tokens = int(held_counts.sum())
    order = np.argsort(-held_counts, kind="stable")[:top]
    return {
        "file": str(path),
        "backend": encoder.backend,
        "vocab_size": encoder.vocab_size,
        "tokens": tokens,
        "bytes_per_token": round(num_bytes / tokens, 4),
        "chars_per_token": round(sum(map(len, texts)) / tokens, 4),
        "vocab_share_held_out": round(float((held_counts > 0).mean()), 4),
        "vocab_share_sample": round(float((all_counts > 0).mean()), 4),
        "top_tokens": [
            {
                "id": int(token),
                "text": _token_text(encoder, int(token)),
                "count": int(held_counts[token]),
                "share": round(float(held_counts[token] / tokens), 4),
            }
            for token in order
            if held_counts[token]
        ],
    }


def _models_section(
    config: ReportConfig,
    encoder: Encoder,
    eos_id: int,
    held: list[np.ndarray],
    train: list[np.ndarray],
    texts: list[str],
    num_bytes: int,
    model: NextTokenModel | None,
) -> dict[str, Any]:
    """Unigram entropy, then each model's cross-entropy and the arithmetic coder's actual size."""
    with_eos = np.concatenate([np.append(doc, eos_id) for doc in held])
    counts = np.bincount(with_eos, minlength=encoder.vocab_size)
    section: dict[str, Any] = {
        "unigram entropy of the held-out part": _figure(entropy_bits(counts), num_bytes)
    }
    models: dict[str, NextTokenModel] = {}
    for order in range(1, config.ngram_order + 1):
        name = f"{_NGRAM_NAMES[order]} Kneser-Ney"
        models[name] = KneserNey(train, encoder.vocab_size, eos_id, order, config.discount)
    if model is not None:
        models["trained model"] = model
    for name, candidate in models.items():
        limit = config.model_verify_tokens if name == "trained model" else 0
        started = time.perf_counter()
        coded = code_documents(candidate, held, eos_id, texts, encoder.decode, limit, name)
        section[name] = {
            "cross_entropy": _figure(coded.pop("cross_entropy_bits"), num_bytes),
            "coded": _figure(coded["coded_bytes"] * 8, num_bytes),
            **coded,
            "seconds": round(time.perf_counter() - started, 3),
        }
        log.info("report: %s: %s", name, section[name])
    return section


def _token_text(encoder: Encoder, token: int) -> str:
    """A token's text, or its byte-level form when it is part of a multi-byte character."""
    text = encoder.decode([token])
    return encoder.tokenizer.id_to_token(token) if "\ufffd" in text else text
