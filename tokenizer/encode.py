"""Texts to token ids: with tiktoken when it reproduces the tokenizer exactly, else HF tokenizers.

On multilingual web text tiktoken encodes several times faster than HF tokenizers with the same
merges and split regex. `load_encoder` converts a `tokenizer.json` (convert.py), then checks that
both libraries give the same ids on a sample (edge cases below, every vocabulary token, and texts
the caller passes); on any difference it logs the reason and encodes with HF tokenizers.

Special-token strings inside a text are encoded as plain text, never as the special token, so a
page that mentions `<|endoftext|>` cannot end a document early; the EOS id is the caller's to add.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from tokenizers import Tokenizer

from corpusmill.core.errors import UserError
from corpusmill.core.storage import Location, location
from corpusmill.tokenizer.config import MAX_VOCAB_SIZE
from corpusmill.tokenizer.convert import Conversion, NotConvertible, to_tiktoken
from corpusmill.tokenizer.nfc import adopt_class, normalize_nfc, version_dependent_class

log = logging.getLogger(__name__)

# Where a split regex, a byte mapping or a normalizer could differ: whitespace runs and exotic
# spaces, line ends, digit groups in several scripts, contractions, punctuation runs, emoji with
# modifiers and joiners, CJK, RTL and Indic scripts, decomposed accents, controls, special tokens.
EDGE_CASES = (
    "Hello  world\t\t!\n\n\n   indented   \n trailing   ",
    "a\r\nb\rc\n\r\n  \r\n\u2028d\u2029e\u0085f\x0bg\x0ch",
    "\u00a0\u1680\u2000\u2007\u200a\u202f\u205f\u3000 nbsp\u00a0and\u3000ideographic",
    "1 12 123 1234 12345 1234567890 3.14159 1,000,000 ١٢٣٤٥ ०१२३४ ⅫⅣ ²³ 1st 2nd",
    "I'm you're he's we've they'll I'd DON'T SHE'S 'quoted' rock'n'roll",
    "!!! ??? ... --- === *** ((( ))) <<>> #hashtag @user https://example.com/a?b=c&d=e",
    "👍 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇫🇷 ✈️",
    "中文分词测试，这是一个句子。日本語のテキストです。한국어 문장입니다.",
    "Привет, мир! Ελληνικά κείμενα. مرحبا بالعالم. שלום עולם. नमस्ते दुनिया। สวัสดีชาวโลก",
    "cafe\u0301 e\u0301te\u0301 A\u030a n\u0303 \u1100\u1161\u11a8 \u0915\u093c ﬁ ｆｕｌｌ",
    "\x00\x01\x1b[0m\x7f\ufeff\u200b\u200c\u200d\ue000\U0010fffd",
    "<|endoftext|> text<|endoftext|>more <|endoftext|><|endoftext|>",
    "def f(x):\n    return x ** 2  # comment\n\tif x:\n\t\tpass\n",
    "",
    " ",
    "\n",
)


def load_encoder(path: Location | str, verify: Sequence[str] = ()) -> Encoder:
    """The encoder of a `tokenizer.json`, local or an object (read by its URL, no local copy):
    tiktoken if it converts and gives the same ids as HF tokenizers on the edge cases, the
    vocabulary and `verify`; HF tokenizers otherwise.
    A file that is no usable tokenizer raises TokenizerFileError (see check_tokenizer_file)."""
    path = location(path)
    encoder = Encoder(_checked_spec(path), None)
    try:
        encoder.fast = to_tiktoken(json.loads(encoder.spec), name=path.stem)
        sample = [*EDGE_CASES, *encoder.vocabulary_texts(), *verify]
        mismatch = encoder.first_mismatch(sample)
        if mismatch is None:
            log.info(
                "%s: encoding with tiktoken, same ids as tokenizers on %d texts", path, len(sample)
            )
            return encoder
        reason = f"tiktoken and tokenizers give different ids for {mismatch[:80]!r}"
    except NotConvertible as exc:
        reason = str(exc)
    log.warning(
        "%s: encoding with HF tokenizers, several times slower than tiktoken, because %s",
        path,
        reason,
    )
    encoder.fast, encoder.reason = None, reason
    return encoder


def check_tokenizer_file(path: Location | str) -> None:
    """Raise TokenizerFileError, naming `path`, unless it is a BPE tokenizer HF tokenizers can load
    whose token ids run from 0 without gaps (a stray huge id would size every table by it)."""
    _checked_spec(location(path))


class TokenizerFileError(UserError, ValueError):
    """A file given as a tokenizer that is none corpusmill can use: the user's to replace."""


def _checked_spec(path: Location) -> str:
    """The text of the tokenizer file `path`, checked as check_tokenizer_file says."""
    try:
        spec = path.read_text(encoding="utf-8", errors="replace")
        data = json.loads(spec)
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise _unusable(path, "HF tokenizers", exc.strerror or "no such file") from None
    except json.JSONDecodeError as exc:
        reason = f"not JSON: {exc}" if spec.strip() else "the file is empty"
        raise _unusable(path, "HF tokenizers", reason) from None
    try:
        tokenizer = Tokenizer.from_str(spec)
    except Exception as exc:  # tokenizers raises a plain Exception for a file it cannot load
        raise _unusable(path, "HF tokenizers", str(exc)) from None
    if (kind := data["model"].get("type")) != "BPE":
        raise _unusable(path, "corpusmill", f"its model is {kind}, not BPE")
    ids = np.fromiter(tokenizer.get_vocab(with_added_tokens=True).values(), np.int64)
    if len(ids) == 0:
        raise _unusable(path, "corpusmill", "its vocabulary is empty")
    largest = int(ids.max())
    if largest >= MAX_VOCAB_SIZE:
        raise _unusable(path, "corpusmill", f"token id {largest} is not below {MAX_VOCAB_SIZE}")
    present = np.zeros(largest + 1, bool)
    present[ids] = True
    if not present.all():
        gap = f"no token has id {np.argmin(present)}, below the largest, {largest}"
        raise _unusable(path, "corpusmill", f"{gap}: ids must run from 0 without gaps")
    return spec


def _unusable(path: Location, reader: str, reason: str) -> TokenizerFileError:
    return TokenizerFileError(
        f"{path} is not a tokenizer {reader} can load ({reason}); give the tokenizer.json of a "
        "trained byte-level BPE tokenizer, e.g. one `corpusmill train-tokenizer` wrote"
    )


class Encoder:
    """Token ids of texts, by tiktoken or HF tokenizers (`backend`), identical either way."""

    def __init__(self, spec: str, fast: Conversion | None, reason: str = "") -> None:
        self.spec = spec
        self.fast = fast
        self.reason = reason
        self.tokenizer = Tokenizer.from_str(spec)
        # Text is text: a special token's string inside a document is not the special token.
        self.tokenizer.encode_special_tokens = True
        vocab = self.tokenizer.get_vocab(with_added_tokens=True)
        self.vocab_size = max(vocab.values()) + 1

    @property
    def backend(self) -> str:
        """ "tiktoken" or "tokenizers"."""
        return "tiktoken" if self.fast else "tokenizers"

    def encode(self, texts: pa.Array | pa.ChunkedArray | Sequence[str]) -> list[np.ndarray]:
        """Each text's token ids (uint32), without special tokens."""
        if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
            texts = pa.array(texts, pa.large_string())
        if self.fast is None:
            encodings = self.tokenizer.encode_batch(texts.to_pylist(), add_special_tokens=False)
            return [np.array(encoding.ids, dtype=np.uint32) for encoding in encodings]
        if self.fast.nfc:
            strings = normalize_nfc(texts, self.tokenizer.normalizer.normalize_str)
        else:
            strings = texts.to_pylist()
        encode = self.fast.encoding.encode_to_numpy
        return [encode(text, disallowed_special=()) for text in strings]

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """The text of token ids, special tokens written out."""
        return self.tokenizer.decode(np.asarray(ids).tolist(), skip_special_tokens=False)

    def token_id(self, token: str) -> int | None:
        """The id of a token (special or not), None if the vocabulary lacks it."""
        return self.tokenizer.token_to_id(token)

    def first_mismatch(self, texts: Sequence[str]) -> str | None:
        """The first text on which this encoder and HF tokenizers disagree, None if none."""
        reference = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        for text, ids, expected in zip(texts, self.encode(texts), reference, strict=True):
            if ids.tolist() != expected.ids:
                return text
        return None

    def vocabulary_texts(self) -> list[str]:
        """Every token decoded on its own, partial UTF-8 sequences as U+FFFD."""
        return self.tokenizer.decode_batch(
            [[token_id] for token_id in range(self.vocab_size)], skip_special_tokens=False
        )

    def __getstate__(self) -> dict[str, Any]:
        nfc_class = version_dependent_class() if self.fast and self.fast.nfc else None
        return {"spec": self.spec, "fast": self.fast, "reason": self.reason, "nfc": nfc_class}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Rebuilt rather than unpickled: a pickled Tokenizer forgets encode_special_tokens.
        self.__init__(state["spec"], state["fast"], state["reason"])
        if state["nfc"]:
            adopt_class(*state["nfc"])
