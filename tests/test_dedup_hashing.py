"""Dedup words, text keys and shingles: what counts as a word, what counts as the same text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.pipeline.dedup.hashing import shingle_hashes, shingle_sets, text_hashes, url_hashes
from corpusmill.pipeline.dedup.tokens import split_words


def words(*texts):
    return split_words(pa.array(list(texts))).to_pylist()


def test_words_are_lowercased_letter_and_digit_runs_split_by_any_punctuation():
    assert words("Hello, World!  It's 3.14 -- ok_go") == [
        ["hello", "world", "it", "s", "3", "14", "ok", "go"]
    ]


def test_unicode_letters_stay_in_words_and_unicode_punctuation_separates():
    assert words("Naïve café—Straße «Zitat» x\u00a0y…z", "Тест, ПРОВЕРКА!") == [
        ["naïve", "café", "straße", "zitat", "x", "y", "z"],
        ["тест", "проверка"],
    ]


def test_each_character_of_a_spaceless_script_is_a_word():
    assert words("我们的世界。OK吗", "日本語のテキスト、カタカナ", "ภาษาไทย") == [
        ["我", "们", "的", "世", "界", "ok", "吗"],
        ["日", "本", "語", "の", "テ", "キ", "ス", "ト", "カ", "タ", "カ", "ナ"],
        ["ภ", "า", "ษ", "า", "ไ", "ท", "ย"],
    ]


def test_words_never_run_across_texts_and_empty_texts_have_none():
    ascii_only = pa.array(["end", "start", "", None, "!!", "x", "y z", ""])
    assert split_words(ascii_only).to_pylist() == [
        ["end"],
        ["start"],
        [],
        [],
        [],
        ["x"],
        ["y", "z"],
        [],
    ]
    spaceless = pa.array(["end", "start 我", "", None, "!!", "我x", "é"])
    assert split_words(spaceless).to_pylist() == [
        ["end"],
        ["start", "我"],
        [],
        [],
        [],
        ["我", "x"],
        ["é"],
    ]


def test_words_of_a_sliced_chunked_array_are_those_of_its_own_texts():
    chunked = pa.chunked_array([["zero one", "two"], ["three four"]])
    assert split_words(chunked.slice(1)).to_pylist() == [["two"], ["three", "four"]]


def test_text_hash_ignores_case_and_whitespace_but_not_punctuation():
    high, low = text_hashes(
        pa.array(["Hello  World\n foo", " hello world foo ", "hello, world foo", "hello world"])
    )
    keys = list(zip(high.tolist(), low.tolist(), strict=True))
    assert keys[0] == keys[1]
    assert len(set(keys)) == 3


def test_every_whitespace_character_separates_words_as_the_exact_hash_does():
    """Texts the exact hash counts as copies have the same words, so the same shingles: every code
    point Unicode's whitespace split cuts at separates words too (U+1680 once did not)."""
    code_points = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    texts = pa.array([f"a{chr(cp)}b" for cp in code_points], pa.large_string())
    cut = pc.list_value_length(pc.utf8_split_whitespace(texts)).to_numpy() == 2
    whitespace = texts.filter(pa.array(cut))
    assert len(whitespace) >= 25
    words = split_words(whitespace)
    assert pc.all(pc.equal(pc.list_value_length(words), 2)).as_py()
    assert set(pc.list_flatten(words).to_pylist()) == {"a", "b"}


def test_texts_of_one_exact_hash_have_the_same_shingles():
    texts = pa.array(
        [
            "Ogham\u1680spaces join  THE words\u3000of a page\u2029here",
            "ogham spaces join the words of a page here",
        ]
    )
    high, low = text_hashes(texts)
    assert high[0] == high[1] and low[0] == low[1]
    shingles = shingle_hashes(texts, 3)
    first, second = np.split(shingles.hashes, [shingles.counts[0]])
    assert first.tolist() == second.tolist()


def test_url_hashes_mark_missing_urls_invalid():
    high, low, valid = url_hashes(pa.array(["https://a.example/", None, "", "https://a.example/"]))
    assert valid.tolist() == [True, False, False, True]
    assert (high[0], low[0]) == (high[3], low[3])


def test_shingles_are_word_ngrams_within_each_text_and_short_texts_get_one():
    shingles = shingle_hashes(pa.array(["a b c d", "", "x y", "a b c"]), 3)
    assert shingles.counts.tolist() == [2, 0, 1, 1]
    # "a b c" is the first 3-gram of the first text and the only one of the last.
    assert shingles.hashes[0] == shingles.hashes[3]
    assert len(set(shingles.hashes[:3].tolist())) == 3


def test_shingles_depend_on_word_order_and_not_on_the_batch():
    alone = shingle_hashes(pa.array(["one two three four"]), 2).hashes
    batched = shingle_hashes(pa.array(["zzz", "one two three four", "four three two one"]), 2)
    assert batched.hashes[1:4].tolist() == alone.tolist()
    assert not set(batched.hashes[4:].tolist()) & set(alone.tolist())


def test_shingle_sets_are_sorted_and_distinct_per_text():
    shingles = shingle_hashes(pa.array(["a b a b a b", "c"]), 2)
    sets = shingle_sets(shingles).to_pylist()
    assert [len(s) for s in sets] == [2, 1]
    assert sets[0] == sorted(set(shingles.hashes[:5].tolist()))
    assert np.all(np.diff(sets[0]) > 0)
