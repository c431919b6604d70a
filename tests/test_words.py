"""Word splitting: symbols are not words, numbers and identifiers are, and scripts written
without spaces split per character."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.pipeline.words import Words, split_line_words, split_words, written_without_spaces


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


def test_words_of_each_line_are_the_words_of_that_line_split_alone():
    texts = pa.array(
        [
            "Hello, world.\n(Next) line --\n\n* item one\n我们去公园。\nend",
            "-- \n --\n",
            "",
            None,
            "x\r\ny\u2028z \u00a0\n\u3000w",
        ],
        pa.large_string(),
    )
    lines = pc.list_flatten(pc.split_pattern(texts, "\n"))
    assert split_line_words(texts).to_pylist() == split_words(lines).to_pylist()
    assert split_line_words(texts).to_pylist()[:4] == [
        ["Hello", "world"],
        ["Next", "line"],
        [],
        ["item", "one"],
    ]


def test_every_character_arrow_splits_text_at_separates_words_and_no_other_does():
    code_points = np.arange(0x110000, dtype=np.uint32)
    # Surrogates cannot be in UTF-8 text; characters of scripts written without spaces are words.
    code_points = code_points[(code_points < 0xD800) | (code_points > 0xDFFF)]
    chars = pa.array(np.frombuffer(code_points.astype("<u4").tobytes(), dtype="<U1"))
    spaceless = pc.match_substring_regex(
        chars, r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]"
    ).to_numpy(zero_copy_only=False)
    texts = pc.binary_join_element_wise("a", chars, "b", "")
    splits_here = pc.list_value_length(pc.utf8_split_whitespace(texts)).to_numpy() == 2
    counts = pc.list_value_length(split_words(texts)).to_numpy()
    assert (counts[splits_here] == 2).all()
    assert (counts[~splits_here & ~spaceless] == 1).all()


def test_narrowed_words_keep_what_was_derived_for_the_whole_batch():
    lists = split_words(pa.array(["The cat, the CAT.", "雨水花园 ok", "3.14 -- 42", "Über alles"]))
    everything = Words.of(lists)
    # Derived for all 13 words of the batch first, then narrowed to 3 rows.
    assert everything.spaceless.tolist() == [False, True, False, False]
    assert len(everything.lengths) == len(everything.has_letter) == len(everything.lowered[0]) == 13
    keep = np.array([True, False, True, True])
    narrowed, alone = everything.filter(keep), Words.of(lists.filter(pa.array(keep)))
    assert narrowed.rows.tolist() == alone.rows.tolist() == [0, 0, 0, 0, 1, 1, 2, 2]
    assert narrowed.counts.tolist() == alone.counts.tolist() == [4, 2, 2]
    assert narrowed.lengths.tolist() == alone.lengths.tolist() == [3, 3, 3, 3, 4, 2, 4, 5]
    assert narrowed.has_letter.tolist() == [True] * 4 + [False, False, True, True]
    assert narrowed.spaceless.tolist() == [False, False, False]
    ids, distinct = narrowed.lowered
    assert distinct.take(pa.array(ids)).to_pylist() == [
        "the", "cat", "the", "cat", "3.14", "42", "über", "alles"
    ]  # fmt: skip
