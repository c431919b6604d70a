"""An HF tokenizers byte-level BPE (`tokenizer.json`) as the tiktoken `Encoding` that encodes it.

tiktoken computes one thing: split text into the matches of one regex, map each match to bytes,
and merge adjacent byte sequences, lowest-ranked result first, while the result is a token. An
HF tokenizer computes the same when it is: an optional NFC normalizer (tiktoken has none; the
encoder applies it, see nfc.py), a pre-tokenizer that isolates the matches of a regex and maps
them to the byte-level alphabet (or a GPT-2 ByteLevel pre-tokenizer, whose regex is known), and a
BPE model without dropout, subword affixes or byte fallback, in which every multi-byte token is
the result of exactly one merge and token ids grow in merge order. Anything else raises
NotConvertible with the reason; the encoder then checks equal ids on real texts as well.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import tiktoken

# What HF's ByteLevel pre-tokenizer splits on when `use_regex` is on: GPT-2's pattern.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


class NotConvertible(ValueError):
    """A tokenizer tiktoken cannot reproduce; the message says which part and why."""


@dataclass(frozen=True)
class Conversion:
    """The tiktoken encoding of a tokenizer, and whether texts must be NFC-normalized first."""

    encoding: tiktoken.Encoding
    nfc: bool


def to_tiktoken(spec: dict[str, Any], name: str) -> Conversion:
    """Convert a parsed `tokenizer.json`; raise NotConvertible if tiktoken cannot reproduce it."""
    nfc = _needs_nfc(spec.get("normalizer"))
    pattern = _split_pattern(spec.get("pre_tokenizer"))
    special = _special_tokens(spec.get("added_tokens") or [])
    ranks = _mergeable_ranks(spec["model"], set(special.values()))
    try:
        encoding = tiktoken.Encoding(
            name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special
        )
    except ValueError as exc:
        raise NotConvertible(f"tiktoken rejects the tokenizer: {exc}") from None
    return Conversion(encoding, nfc)


def byte_level_alphabet() -> dict[str, int]:
    """The byte each character of GPT-2's byte-level alphabet stands for.

    Printable Latin-1 bytes stand for themselves; the 68 others (controls, space, soft hyphen...)
    are mapped, in byte order, to U+0100 and up, so every token is a printable string.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    shifted = [byte for byte in range(256) if byte not in printable]
    alphabet = {chr(byte): byte for byte in printable}
    alphabet.update((chr(256 + n), byte) for n, byte in enumerate(shifted))
    return alphabet


def _needs_nfc(normalizer: dict[str, Any] | None) -> bool:
    """True for an NFC normalizer, False for none; anything else has no tiktoken equivalent."""
    if normalizer is None:
        return False
    parts = normalizer["normalizers"] if normalizer["type"] == "Sequence" else [normalizer]
    kinds = {part["type"] for part in parts}
    if kinds <= {"NFC"}:
        return bool(kinds)
    raise NotConvertible(f"normalizer {sorted(kinds - {'NFC'})} has no tiktoken equivalent")


def _split_pattern(pre_tokenizer: dict[str, Any] | None) -> str:
    """The regex whose matches the pre-tokenizer isolates before mapping bytes to characters."""
    if pre_tokenizer is None:
        raise NotConvertible("there is no pre-tokenizer, so no byte-level alphabet")
    parts = (
        pre_tokenizer["pretokenizers"] if pre_tokenizer["type"] == "Sequence" else [pre_tokenizer]
    )
    kinds = [part["type"] for part in parts]
    byte_level = parts[-1] if parts else {}
    if kinds[-1:] != ["ByteLevel"] or byte_level.get("add_prefix_space"):
        raise NotConvertible(
            f"pre-tokenizers {kinds} do not end in a ByteLevel without add_prefix_space"
        )
    if kinds == ["ByteLevel"] and byte_level.get("use_regex", True):
        return GPT2_PATTERN
    if kinds != ["Split", "ByteLevel"] or byte_level.get("use_regex", True):
        raise NotConvertible(
            f"pre-tokenizers {kinds} are not a regex Split then a ByteLevel without its own regex"
        )
    split = parts[0]
    if "Regex" not in split["pattern"] or split["behavior"] != "Isolated" or split["invert"]:
        raise NotConvertible(
            "the Split pre-tokenizer does not isolate the matches of a regex "
            f"(pattern {split['pattern']}, behavior {split['behavior']}, invert {split['invert']})"
        )
    return split["pattern"]["Regex"]


def _special_tokens(added: list[dict[str, Any]]) -> dict[str, int]:
    """Special tokens by content; an added token that is not special cannot be reproduced."""
    plain = [token["content"] for token in added if not token["special"]]
    if plain:
        raise NotConvertible(f"added tokens {plain[:5]} are not special; tiktoken has no such kind")
    return {token["content"]: token["id"] for token in added}


def _mergeable_ranks(model: dict[str, Any], special_ids: set[int]) -> dict[bytes, int]:
    """Each token's bytes and id, checked so that tiktoken's merges are the model's merges."""
    if model["type"] != "BPE":
        raise NotConvertible(f"the model is {model['type']}, not BPE")
    for option in ("dropout", "continuing_subword_prefix", "end_of_word_suffix", "byte_fallback"):
        if model.get(option):
            raise NotConvertible(f"the BPE model sets {option} = {model[option]!r}")
    alphabet = byte_level_alphabet()
    ranks = {}
    for token, token_id in model["vocab"].items():
        if token_id in special_ids:
            continue
        try:
            ranks[bytes(alphabet[char] for char in token)] = token_id
        except KeyError:
            raise NotConvertible(f"token {token!r} is not in the byte-level alphabet") from None
    missing = [byte for byte in range(256) if bytes([byte]) not in ranks]
    if missing:
        raise NotConvertible(f"the vocabulary lacks the single bytes {missing[:8]}")
    vocab = model["vocab"]
    merged = [vocab.get("".join(_merge_pair(merge))) for merge in model["merges"]]
    if None in merged or any(a >= b for a, b in itertools.pairwise(merged)):
        raise NotConvertible(
            "token ids do not grow in merge order, and tiktoken ranks merges by token id"
        )
    multi_byte = {token_id for token, token_id in ranks.items() if len(token) > 1}
    if multi_byte != set(merged):
        raise NotConvertible("some multi-byte tokens are not the result of a merge")
    return ranks


def _merge_pair(merge: list[str] | str) -> list[str]:
    """A merge as its two parts: `["a", "b"]` in current files, `"a b"` in older ones."""
    return merge if isinstance(merge, list) else merge.split(" ", 1)
