"""Word splitting: symbols are not words, numbers and identifiers are, and scripts written
without spaces split per character."""

from __future__ import annotations

import pyarrow as pa

from corpusmill.pipeline.words import split_words, written_without_spaces


def words_of(*texts: str | None) -> list[list[str]]:
    return split_words(pa.array(texts, pa.large_string())).to_pylist()


def test_punctuation_and_symbol_tokens_are_not_words():
    assert words_of("Wait -- really?! * { } => ... #") == [["Wait", "really"]]


def test_punctuation_attached_to_words_is_trimmed():
    assert words_of('"Hello," she said (quietly).') == [["Hello", "she", "said", "quietly"]]


def test_numbers_count_as_words():
    assert words_of("In 2024 it cost $3.50, or 20% more.") == [
        ["In", "2024", "it", "cost", "3.50", "or", "20", "more"]
    ]


def test_code_identifiers_stay_single_words():
    assert words_of("Call obj.method() on foo_bar, not __init__ or x = y;") == [
        ["Call", "obj.method", "on", "foo_bar", "not", "init", "or", "x", "y"]
    ]


def test_contractions_and_hyphenated_words_are_one_word():
    assert words_of("Don't re-run state-of-the-art jobs.") == [
        ["Don't", "re-run", "state-of-the-art", "jobs"]
    ]


def test_each_han_character_is_a_word_and_cjk_punctuation_is_not():
    assert words_of("我们去公园，好吗？") == [["我", "们", "去", "公", "园", "好", "吗"]]


def test_chinese_article_has_one_word_per_character():
    article = "雨水花园是一种低于周围地面的小型绿地。" * 100
    assert len(words_of(article)[0]) == 1800


def test_kana_keep_their_prolonged_sound_mark_and_latin_stays_whole():
    assert words_of("コーヒーとWiFiです") == [["コー", "ヒー", "と", "WiFi", "で", "す"]]


def test_thai_characters_keep_their_combining_marks():
    assert words_of("ที่นี่") == [["ที่", "นี่"]]


def test_null_empty_and_symbol_only_texts_have_no_words():
    assert words_of(None, "", "--- *** ---", "ok") == [[], [], [], ["ok"]]


def test_chunked_input_gives_one_list_per_text():
    chunked = pa.chunked_array([["a b"], ["c", "d e f"]], pa.large_string())
    assert split_words(chunked).to_pylist() == [["a", "b"], ["c"], ["d", "e", "f"]]


def test_texts_written_without_spaces_are_told_by_their_words():
    words = split_words(
        pa.array(["城市里的雨水花园", "Der Garten 花园", "雨水 garden city", "", "タイ語ภาษาไทย"])
    )
    assert written_without_spaces(words).tolist() == [True, False, False, False, True]
