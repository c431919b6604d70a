"""llm.c's token files: the format its data scripts write and its training programs read.

A file is a header of 256 little-endian int32 (magic, version, token count, then zeros) and the
tokens after it, as `write_datafile` in llm.c's dev/data/data_common.py writes them. GPT-2's
format (magic 20240520, version 1) holds uint16 tokens: llm.c's train_gpt2 (C and CUDA, through
llmc/dataloader.h), its train_gpt2.py and modded-nanogpt read it. LLaMA-3's (magic 20240801,
version 7) holds uint32 tokens: train_llama3.py and the dataloader of llm.c's llama3 branch read
it, train_gpt2 refuses it, so a vocabulary above 65,536 ids is written in it and trains with
llm.c's LLaMA-3 code only.

Documents are delimited the way llm.c's own writers do it (dev/data/fineweb.py,
tinyshakespeare.py): the EOS token comes before each document, so every file starts with one and
a model learns each document after an EOS, as on llm.c's own data. A run's shards end each
document with its EOS instead, so the writer moves each document's EOS to its front. A file holds
whole documents only (fineweb.py fills every file to exactly its size and continues a document in
the next): the next document starts a new file when it would overflow this one, and a document
longer than a file gets a file of its own.

Files are named as fineweb.py names them, `<name>_val_000000.bin`, `<name>_train_000001.bin`: one
counter over both splits, validation files first. llm.c's loader also needs every file to hold at
least processes x B x T + 1 tokens, and train_gpt2 built from a descriptor (`-e d12`) embeds
GPT-2's 50,257 ids, no more.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from corpusmill.loader.format import FormatError

# The order in which the splits' files are numbered.
SPLITS = ("val", "train")
HEADER_INTS = 256
# The header counts tokens in an int32.
MAX_FILE_TOKENS = (1 << 31) - 1
# GPT-2 embeds this many ids; larger ones are out of range for train_gpt2's models.
GPT2_VOCAB_SIZE = 50257
# (magic, version) of each token type, as data_common.py's HEADERS_INFO has them.
_FORMATS = {np.dtype("<u2"): (20240520, 1), np.dtype("<u4"): (20240801, 7)}


@dataclass(frozen=True)
class TokenFile:
    """A written token file: its path and the documents and tokens it holds."""

    path: Path
    docs: int
    tokens: int


class TokenFileWriter:
    """Documents written to llm.c token files in `dest` as they come, each split's files holding at
    most `file_tokens` tokens, under temporary names until `finish` gives them theirs."""

    def __init__(self, dest: Path, name: str, dtype: np.dtype, file_tokens: int) -> None:
        self.dest, self.name, self.file_tokens = Path(dest), name, file_tokens
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self._done: dict[str, list[_File]] = {split: [] for split in SPLITS}
        self._open: dict[str, _File] = {}

    def __enter__(self) -> TokenFileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        """Remove the temporaries of files not named by `finish` (after an error)."""
        for file in [*self._open.values(), *(f for files in self._done.values() for f in files)]:
            file.handle.close()
            file.temporary.unlink(missing_ok=True)

    def write(self, split: str, values: np.ndarray, lengths: np.ndarray) -> None:
        """Append documents to `split`'s files: `values` holds them back to back, each ending with
        its EOS as in a shard, and `lengths` their lengths with it."""
        ends = np.cumsum(lengths)
        start = 0
        while start < len(lengths):
            file = self._open.get(split) or self._start(split)
            first = int(ends[start - 1]) if start else 0
            room = self.file_tokens - file.tokens
            fit = int(np.searchsorted(ends[start:] - first, room, side="right"))
            if fit == 0 and file.tokens:
                self._close(split)
                continue
            stop = start + max(fit, 1)
            chunk = values[first : ends[stop - 1]]
            # Each document's EOS ends it: rolled by one, the chunk starts every document with it.
            np.roll(chunk, 1).astype(self.dtype, copy=False).tofile(file.handle)
            file.tokens += len(chunk)
            file.docs += stop - start
            start = stop

    def finish(self) -> list[TokenFile]:
        """Close every file and name it (replacing same-named files of an earlier export); delete
        the earlier export's other files of this name, which llm.c's glob would read too."""
        for split in list(self._open):
            self._close(split)
        written = []
        for index, file in enumerate(f for split in SPLITS for f in self._done[split]):
            path = self.dest / f"{self.name}_{file.split}_{index:06d}.bin"
            os.replace(file.temporary, path)
            written.append(TokenFile(path, file.docs, file.tokens))
        pattern = re.compile(re.escape(self.name) + r"_(val|train)_\d{6}\.bin")
        kept = {file.path.name for file in written}
        for path in self.dest.glob(f"{self.name}_*.bin"):
            if pattern.fullmatch(path.name) and path.name not in kept:
                path.unlink()
        return written

    def _start(self, split: str) -> _File:
        """Open a new file of `split` under a temporary name, its header's count still 0."""
        temporary = self.dest / f".{self.name}_{split}.{uuid.uuid4().hex}.tmp"
        file = _File(split, temporary, open(temporary, "wb"))
        file.handle.write(header(self.dtype, 0).tobytes())
        self._open[split] = file
        return file

    def _close(self, split: str) -> None:
        """Write the open file's token count into its header and close it."""
        file = self._open.pop(split)
        file.handle.seek(0)
        file.handle.write(header(self.dtype, file.tokens).tobytes())
        file.handle.close()
        self._done[split].append(file)


def header(dtype: np.dtype, tokens: int) -> np.ndarray:
    """The header of a file of `tokens` tokens of type `dtype` (uint16 or uint32)."""
    values = np.zeros(HEADER_INTS, dtype="<i4")
    values[:3] = (*_FORMATS[np.dtype(dtype).newbyteorder("<")], tokens)
    return values


def read_token_file(path: Path) -> np.ndarray:
    """The tokens of an llm.c token file, memory-mapped, its header checked against its size."""
    size = Path(path).stat().st_size
    values = np.fromfile(path, dtype="<i4", count=min(HEADER_INTS, size // 4))
    formats = {key: dtype for dtype, key in _FORMATS.items()}
    dtype = formats.get(tuple(values[:2].tolist()))
    if len(values) < HEADER_INTS or dtype is None:
        raise FormatError(
            f"{path} is not an llm.c token file (no magic 20240520 or 20240801 with its version "
            "in a 1024-byte header); export it again"
        )
    tokens = int(values[2])
    if size != HEADER_INTS * 4 + tokens * dtype.itemsize:
        raise FormatError(
            f"{path} is {size} bytes, its header says {tokens} {dtype.name} tokens after 1024; "
            "export it again"
        )
    if tokens == 0:
        return np.empty(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=HEADER_INTS * 4, shape=(tokens,))


@dataclass
class _File:
    """A file being written: its split, temporary path, handle and what it holds so far."""

    split: str
    temporary: Path
    handle: BinaryIO
    docs: int = 0
    tokens: int = 0
