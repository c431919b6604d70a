"""Language identification with the bundled fastText lid.176 model."""

from __future__ import annotations

import pyarrow as pa

from corpusmill.pipeline.langid import LangIdConfig, identify_languages

TEXTS = {
    "en": "The committee met on Tuesday to discuss the new budget for the public library and its reading rooms.",
    "de": "Der Ausschuss traf sich am Dienstag, um den neuen Haushalt der öffentlichen Bibliothek zu besprechen.",
    "fr": "Le comité s'est réuni mardi pour discuter du nouveau budget de la bibliothèque municipale.",
    "es": "El comité se reunió el martes para discutir el nuevo presupuesto de la biblioteca pública.",
    "ru": "Комитет собрался во вторник, чтобы обсудить новый бюджет городской библиотеки.",
    "zh": "委员会周二开会讨论了公共图书馆的新预算以及阅览室的开放时间。",
}


def table(texts: list[str]) -> pa.Table:
    n = len(texts)
    return pa.table(
        {
            "text": pa.array(texts, pa.large_string()),
            "lang": pa.nulls(n, pa.string()),
            "lang_score": pa.nulls(n, pa.float32()),
        }
    )


def test_each_language_is_identified_with_a_confident_score():
    result = identify_languages(table(list(TEXTS.values())), LangIdConfig())
    assert result["lang"].to_pylist() == list(TEXTS)
    assert all(score > 0.8 for score in result["lang_score"].to_pylist())


def test_only_the_first_max_chars_are_read():
    mixed = TEXTS["de"] + "\n" + TEXTS["en"] * 20
    result = identify_languages(table([mixed]), LangIdConfig(max_chars=len(TEXTS["de"])))
    assert result["lang"].to_pylist() == ["de"]
    assert identify_languages(table([mixed]), LangIdConfig())["lang"].to_pylist() == ["en"]
