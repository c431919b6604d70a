"""Text normalization: NFC, control characters, whitespace, on a whole column at once."""

from __future__ import annotations

import pyarrow as pa

from corpusmill.pipeline.normalize import normalize_text


def normalized(*texts: str) -> list[str]:
    table = pa.table(
        {"id": [str(i) for i in range(len(texts))], "text": pa.array(texts, pa.large_string())}
    )
    result = normalize_text(table)
    assert result.column_names == ["id", "text"]
    return result["text"].to_pylist()


def test_decomposed_accents_become_composed_nfc():
    assert normalized("Cafe\u0301 de\u0301ja\u0300") == ["Caf\u00e9 d\u00e9j\u00e0"]


def test_control_characters_and_bom_are_removed_but_tabs_and_newlines_are_not_lost():
    assert normalized("\ufeffa\x00b\x07c\x1bd\x7fe\x9ff\tg\nh") == ["abcdef g\nh"]


def test_line_endings_unify_and_blank_line_runs_become_one_paragraph_break():
    assert normalized("one\r\ntwo\rthree\u2028four\n\n\n\n\nfive") == [
        "one\ntwo\nthree\nfour\n\nfive"
    ]


def test_unicode_spaces_collapse_and_lines_are_trimmed():
    assert normalized("  a\u00a0\u00a0b \u3000 c  \n   d\t\te   \n") == ["a b c\nd e"]


def test_text_without_anything_to_fix_is_unchanged():
    text = "Первая строка.\n\n第二段落。 Emoji 🙂 stay, and so do ZWJ sequences 👩\u200d💻."
    assert normalized(text) == [text]


def test_whitespace_only_text_becomes_empty():
    assert normalized(" \n\t\r\n\u00a0") == [""]
