"""The files transformers reads beside a `tokenizer.json`, so that `AutoTokenizer.from_pretrained`
on its folder knows the end-of-text token and encodes a text as the shards hold it.

Without them transformers 5 loads the tokenizer with no special tokens and transformers 4 refuses
the folder. `tokenizer_config.json` names the class, the end-of-text token, the other special
tokens and each added token's options, and says three things that keep the ids the shards' ids:
`split_special_tokens` (a special token's string inside a text is text, as in encode.py), no
`clean_up_tokenization_spaces` (decoding gives back the text's spaces) and no BOS. Nothing is
added around a text because a trained tokenizer has no post-processor; a given tokenizer keeps
its own, which transformers applies whatever the config says (add_special_tokens=False skips it).
`special_tokens_map.json` repeats the special tokens, where transformers 4 also reads them.
"""

from __future__ import annotations

import json
from typing import Any

from corpusmill.core.atomic import write_json
from corpusmill.core.storage import Location, location
from corpusmill.loader.layout import SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG
from corpusmill.tokenizer.config import TokenizerConfig

# The options of an added token that transformers keeps in `added_tokens_decoder`.
_TOKEN_OPTIONS = ("content", "lstrip", "normalized", "rstrip", "single_word", "special")


def write_transformers_files(path: Location | str, config: TokenizerConfig) -> None:
    """Write tokenizer_config.json and special_tokens_map.json beside the tokenizer file `path`
    (local, or an object by its URL), for its end-of-text token `config.eos` and
    `config.model_max_length`, where they differ."""
    path = location(path)
    spec = json.loads(path.read_text(encoding="utf-8"))
    added = sorted(spec.get("added_tokens") or [], key=lambda token: token["id"])
    special = {
        "eos_token": config.eos,
        "additional_special_tokens": [
            token["content"]
            for token in added
            if token["special"] and token["content"] != config.eos
        ],
    }
    _write_if_changed(
        path.with_name(TOKENIZER_CONFIG),
        {
            **special,
            "tokenizer_class": "PreTrainedTokenizerFast",
            "added_tokens_decoder": {
                str(token["id"]): {option: token[option] for option in _TOKEN_OPTIONS}
                for token in added
            },
            "bos_token": None,
            "pad_token": None,
            "unk_token": None,
            "model_max_length": config.model_max_length,
            "clean_up_tokenization_spaces": False,
            "split_special_tokens": True,
        },
    )
    _write_if_changed(path.with_name(SPECIAL_TOKENS_MAP), special)


def _write_if_changed(path: Location, data: dict[str, Any]) -> None:
    """Write `data` as JSON unless `path` holds it already, so that a rerun of a finished run
    touches no file."""
    try:
        if json.loads(path.read_text(encoding="utf-8")) == data:
            return
    except (OSError, ValueError):
        pass
    write_json(path, data)
