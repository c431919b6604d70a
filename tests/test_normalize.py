"""Text normalization: NFC, control characters, whitespace, on a whole column at once."""

from __future__ import annotations

import unicodedata

import pyarrow as pa

from corpusmill.pipeline.normalize import _NFC_SAFE, normalize_text


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


def test_texts_needing_nfc_or_control_removal_are_fixed_beside_texts_that_do_not():
    assert normalized("plain text", "Cafe\u0301", "\u1100\u1161", "\u212b", "a\x00b", "x\r\ny") == [
        "plain text",
        "Caf\u00e9",
        "\uac00",
        "\u00c5",
        "ab",
        "x\ny",
    ]


def test_characters_let_through_without_nfc_are_assigned_starters_that_never_compose():
    # Second characters of canonical compositions (the NFC quick check's "maybe"), and the
    # Hangul vowel and final jamo, which compose algorithmically.
    composes = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    for code_point in range(0x110000):
        decomposition = unicodedata.decomposition(chr(code_point)).split()
        if len(decomposition) == 2 and not decomposition[0].startswith("<"):
            composes.add(int(decomposition[1], 16))
    for first, last in _NFC_SAFE:
        for code_point in range(first, last + 1):
            char = chr(code_point)
            assert unicodedata.category(char) not in ("Cn", "Cs"), hex(code_point)
            assert unicodedata.combining(char) == 0, hex(code_point)
            assert unicodedata.normalize("NFC", char) == char, hex(code_point)
            assert code_point not in composes, hex(code_point)
