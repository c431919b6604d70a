"""Quality filters: each rule just passing and just failing, whole pages through the defaults,
and the bookkeeping of apply_filters (one reason per removed row, counts adding up)."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from corpusmill.pipeline.config import config_keys
from corpusmill.pipeline.filters import (
    C4,
    C4Config,
    FiltersConfig,
    FineWeb,
    FineWebConfig,
    GopherQuality,
    GopherQualityConfig,
    GopherRepetition,
    GopherRepetitionConfig,
    Language,
    LanguageConfig,
    apply_filters,
    base,
    build_filters,
)
from corpusmill.pipeline.filters.base import Splits
from corpusmill.pipeline.words import split_line_words

ENGLISH = """How city trees cool the streets around them

On a hot afternoon in July, the pavement of an unshaded parking lot can be more than twenty degrees warmer than the grass in a park a few blocks away. Researchers call this difference the urban heat island effect, and it has become one of the most studied problems in city planning.

Trees help in two ways. Their canopy blocks sunlight before it reaches asphalt and brick, so less heat is stored during the day and released at night. Their leaves also release water vapour, which takes energy from the surrounding air as it evaporates.

A study of several European capitals found that neighbourhoods with dense street trees were on average two degrees cooler during heat waves than similar areas without them. That may sound small, but hospital admissions for heat stroke rise sharply with every additional degree.

Planting is only the beginning. Young trees need regular watering for their first three summers, and many cities lose a large share of new saplings because nobody is responsible for that work. Some councils now ask residents to adopt a tree and report its condition through a simple app.

Species choice matters as well. Fast-growing varieties give shade sooner but often live shorter lives, while oaks and limes take decades to mature and then shade a street for a century. Planners increasingly mix both kinds so that the canopy never disappears all at once.

The benefits go beyond temperature. Streets lined with trees tend to have slower traffic, more pedestrians and higher property values, and the roots absorb rainwater that would otherwise overload the drains during storms."""

GERMAN = """Warum Bienen im Winter nicht erfrieren

Wenn im Januar die Temperaturen unter null fallen, sitzen die Honigbienen dicht gedrängt in ihrem Stock. Sie bilden eine sogenannte Wintertraube, in deren Mitte sich die Königin befindet. Die Arbeiterinnen zittern mit ihren Flugmuskeln, ohne die Flügel zu bewegen, und erzeugen auf diese Weise Wärme.

Im Inneren der Traube herrschen auch bei strengem Frost etwa zwanzig bis dreißig Grad. Die Bienen am Rand wechseln regelmäßig mit denen in der Mitte, damit keine von ihnen zu lange der Kälte ausgesetzt ist. Für diese Arbeit brauchen sie viel Energie, die sie aus dem im Sommer gesammelten Honig gewinnen.

Ein starkes Volk verbraucht über den Winter zehn bis fünfzehn Kilogramm Futter. Imker prüfen deshalb im Herbst, ob genug Vorräte vorhanden sind, und füttern bei Bedarf mit Zuckerlösung zu. Ist der Vorrat zu knapp, verhungert das Volk oft kurz vor dem Frühling, wenn die Brut wieder beginnt und der Bedarf stark steigt.

An warmen Tagen verlassen einige Bienen den Stock für einen kurzen Reinigungsflug. Sie entleeren dabei ihren Darm, denn im Stock selbst tun sie das nicht. Danach kehren sie schnell zurück, bevor ihre Muskeln in der kalten Luft erstarren."""

RUSSIAN = """Как устроены подземные реки Москвы

Под улицами Москвы течёт больше сотни рек и ручьёв, которые когда-то были видны на поверхности. В девятнадцатом и двадцатом веках многие из них заключили в трубы и коллекторы, потому что они мешали строительству и часто разливались весной.

Самая известная из таких рек — Неглинная. Её русло проходит под Театральной площадью и Александровским садом, а в дождливую погоду вода в коллекторе поднимается так высоко, что городские службы следят за ней круглосуточно.

Подземные реки по-прежнему влияют на жизнь города. Они подтапливают подвалы, размывают грунт под фундаментами и заставляют инженеров учитывать их при прокладке новых линий метро. Иногда во время ремонта улицы рабочие находят старые кирпичные своды, построенные больше ста лет назад.

Любители истории организуют экскурсии по некоторым коллекторам, но спускаться туда без проводника опасно. Уровень воды может быстро измениться, а в тоннелях легко заблудиться."""

CHINESE = """城市里的雨水花园

近年来，越来越多的城市开始建设雨水花园。雨水花园是一种低于周围地面的小型绿地，下雨时可以收集从屋顶、道路和广场流下来的雨水，让雨水慢慢渗入土壤，而不是直接流进下水道。

这种做法有很多好处。首先，它可以减轻暴雨时排水系统的压力，降低城市内涝的风险。其次，植物和土壤能够过滤雨水中的泥沙和部分污染物，使地下水更加干净。此外，雨水花园还为鸟类和昆虫提供了栖息的地方，让城市环境更有生机。

建设雨水花园并不复杂。设计人员需要先了解当地的降雨量和土壤类型，然后选择耐旱又耐涝的本地植物。花园的深度一般在十到三十厘米之间，底部铺上砂石和改良土壤，以提高渗水能力。

不过，雨水花园也需要日常维护。落叶和垃圾会堵塞进水口，杂草如果不及时清理，也会影响景观。一些社区因此组织居民志愿者定期打理，既保护了环境，也增进了邻里之间的交流。"""

TECHNICAL = """Reading compressed JSON Lines files in Python

Large datasets are often shipped as JSON Lines files compressed with Zstandard. Each line holds one JSON object, so the file can be processed as a stream without loading it into memory. This guide shows how to do that with the zstandard package and the standard library.

Installation

Install the package with pip install zstandard. It provides binary wheels for Linux, macOS and Windows, so you do not need a C compiler.

Reading records one at a time

The decompressor exposes a stream reader that behaves like a binary file. Wrap it in io.TextIOWrapper to get text lines:
import io
import json
import zstandard
def read_records(path):
with open(path, "rb") as raw:
reader = zstandard.ZstdDecompressor().stream_reader(raw)
for line in io.TextIOWrapper(reader, encoding="utf-8"):
yield json.loads(line)

Call read_records("data.jsonl.zst") and iterate over the result. Memory use stays constant, whatever the size of the file, because only one line is decoded at a time.

Handling broken lines

Crawled data sometimes contains truncated records. Catch json.JSONDecodeError inside the loop, log the line number and continue with the next record instead of stopping the whole job:
for number, line in enumerate(lines, start=1):
try:
record = json.loads(line)
except json.JSONDecodeError as error:
log.warning("line %d: %s", number, error)

Performance notes

Decompression usually runs at several hundred megabytes per second on one core, so parsing the JSON is the slower step. If you only need a few fields, orjson.loads is two to three times faster than the standard json module. The settings dictionary, for example {"level": 3, "threads": 2}, controls the compressor and has no effect when reading."""

KEYWORD_SPAM = (
    "cheap shoes online buy cheap shoes best cheap shoes sale discount shoes cheap running shoes "
    "cheap shoes free shipping cheap shoes outlet buy shoes cheap shoes store cheap nike shoes "
    "cheap shoes for men cheap shoes for women cheap shoes near me cheap shoes deals"
)

NAVIGATION = "\n".join(
    [
        "Home",
        "About us",
        "Our team",
        "Careers",
        "Press",
        "Products",
        "Laptops",
        "Desktops",
        "Monitors",
        "Keyboards",
        "Accessories",
        "Gift cards",
        "Support",
        "Contact us",
        "Order status",
        "Returns",
        "Warranty",
        "Downloads",
        "Community forum",
        "Blog",
        "Newsletter",
        "Store locator",
        "Privacy",
        "Terms",
        "Sitemap",
        "Follow us on Twitter",
        "Facebook",
        "Instagram",
        "YouTube",
        "Shop by brand",
        "Shop by price",
        "New arrivals",
        "Best sellers",
        "Clearance",
        "Laptop bags and sleeves",
        "Docking stations",
        "Printers and ink",
        "Smart home",
        "Audio and headphones",
        "Cameras",
        "Phones and tablets",
        "Gaming",
        "Software",
        "Trade in your old device",
        "Business accounts",
        "Education discounts",
        "Track my order",
        "Help centre",
        "Accessibility",
        "Cookie settings",
        "English",
        "Deutsch",
        "Español",
    ]
)

CHINESE_SPAM = (
    "特价手机批发，特价手机哪里买，特价手机官网，最便宜的特价手机，特价手机包邮，"
    "特价手机大全，二手特价手机，特价手机推荐，特价手机排行榜，特价手机批发市场。"
)

NOT_FOUND = (
    "Page not found. The page you are looking for has moved or no longer exists. "
    "Go back to the home page."
)

# Building blocks for boundary cases: consonant-only filler words, all distinct, and a phrase of
# words with vowels, which therefore never equal a filler word.
_CONSONANTS = "bcdfghjklmnpqrstvwxz"
PHRASE = "ola umi eko ara ibu ote uza ifa oke ami".split()


def docs(*texts: str, lang: str | None = "en", score: float | None = 0.9) -> pa.Table:
    count = len(texts)
    return pa.table(
        {
            "id": [f"doc#{i}" for i in range(count)],
            "text": pa.array(texts, pa.large_string()),
            "lang": pa.array([lang] * count, pa.string()),
            "lang_score": pa.array([score] * count, pa.float32()),
        }
    )


def reasons(filt, *texts: str, lang: str | None = "en", score: float | None = 0.9) -> list:
    """The filter's reason for each text (None where kept), checked against its keep mask."""
    result = filt(docs(*texts, lang=lang, score=score))
    assert result.keep.tolist() == [r is None for r in result.reason.to_pylist()]
    return result.reason.to_pylist()


def filler(count: int, length: int = 3, skip: int = 0) -> list[str]:
    """`count` distinct consonant-only words of `length` letters."""
    words = ("".join(letters) for letters in itertools.product(_CONSONANTS, repeat=length))
    return list(itertools.islice(words, skip, skip + count))


def sentence(count: int, skip: int = 0) -> str:
    """`count` distinct filler words separated by spaces."""
    return " ".join(filler(count, skip=skip))


def filler_chars(chars: int) -> list[str]:
    """Distinct filler words with exactly `chars` letters in all (3-letter words, one 2 or 4)."""
    count, rest = divmod(chars, 3)
    if rest == 0:
        return filler(count)
    if rest == 1:
        return filler(count - 1) + filler(1, 4)
    return filler(count) + filler(1, 2)


def smallest_total(repeated_chars: int, threshold: float) -> int:
    """Fewest characters a document can have for repeated_chars / total to stay within threshold."""
    return next(t for t in itertools.count(1) if repeated_chars / t <= threshold)


def interleave(phrase: str, times: int, filler_words: list[str]) -> str:
    """`phrase` `times` times, with the filler words spread in between and around."""
    groups = [" ".join(filler_words[i :: times + 1]) for i in range(times + 1)]
    pieces = [groups[0]]
    for group in groups[1:]:
        pieces += [phrase, group]
    return " ".join(piece for piece in pieces if piece)


# --- Gopher quality ------------------------------------------------------------------------------


GOPHER = GopherQuality(GopherQualityConfig())
FIFTY = ["the", "and", *filler(48)]  # 50 words of 3 letters, two of them stop words


def test_gopher_word_count_of_fifty_passes_and_forty_nine_fails():
    passing, failing = " ".join(FIFTY), " ".join(FIFTY[:-1])
    assert reasons(GOPHER, passing, failing) == [None, "gopher_quality:too_few_words"]


def test_gopher_word_count_above_one_hundred_thousand_fails():
    words = ["the", "and", *filler(99_998, length=4)]
    passing, failing = " ".join(words), " ".join([*words, "bbbb"])
    assert reasons(GOPHER, passing, failing) == [None, "gopher_quality:too_many_words"]


def test_gopher_mean_word_length_of_three_passes_and_below_fails():
    passing, failing = " ".join(FIFTY), " ".join([*FIFTY[:-1], "bb"])
    assert reasons(GOPHER, passing, failing) == [None, "gopher_quality:short_mean_word_length"]


def test_gopher_mean_word_length_of_ten_passes_and_above_fails():
    # 3 + 3 + 46 * 10 + 2 * 17 = 500 letters in 50 words.
    exact = ["the", "and", *filler(46, length=10), *filler(2, length=17)]
    passing, failing = " ".join(exact), " ".join(exact) + "x"
    assert reasons(GOPHER, passing, failing) == [None, "gopher_quality:long_mean_word_length"]


def test_gopher_one_hash_per_ten_words_passes_and_more_fails():
    passing, failing = (" ".join(FIFTY + ["#"] * n) for n in (5, 6))
    assert reasons(GOPHER, passing, failing) == [None, "gopher_quality:too_many_hashes"]


def test_gopher_one_ellipsis_per_ten_words_passes_and_more_fails():
    passing = " ".join(FIFTY[:20] + ["...", "…", "...", "…", "..."] + FIFTY[20:])
    failing = passing.replace("the", "the …")
    assert reasons(GOPHER, passing, failing) == [None, "gopher_quality:too_many_ellipses"]


def test_gopher_ninety_percent_bullet_lines_passes_and_more_fails():
    lines = [f"the and {word}" for word in filler(20)]
    passing, failing = ("\n".join([f"• {x}" for x in lines[:n]] + lines[n:]) for n in (18, 19))
    assert reasons(GOPHER, passing, failing) == [None, "gopher_quality:too_many_bullet_lines"]


def test_gopher_thirty_percent_ellipsis_lines_passes_and_more_fails():
    lines = [f"the {sentence(4, skip=4 * i)}" for i in range(10)]
    passing, failing = ("\n".join([f"{x} …" for x in lines[:n]] + lines[n:]) for n in (3, 4))
    assert reasons(GOPHER, passing, failing) == [None, "gopher_quality:too_many_ellipsis_lines"]


def test_gopher_eighty_percent_alphabetic_words_passes_and_fewer_fails():
    passing, failing = (" ".join(FIFTY[: 50 - n] + ["123"] * n) for n in (10, 11))
    assert reasons(GOPHER, passing, failing) == [None, "gopher_quality:too_few_alpha_words"]


def test_gopher_two_stop_words_pass_and_one_fails():
    passing, failing = " ".join(["The", "with", *filler(48)]), " ".join(["The", *filler(49)])
    assert reasons(GOPHER, passing, failing) == [None, "gopher_quality:too_few_stop_words"]


def test_stop_words_are_counted_in_the_documents_language_and_skipped_without_a_list():
    german = " ".join(["Die", "und", *filler(48)])
    assert reasons(GOPHER, german, lang="de") == [None]
    assert reasons(GOPHER, german, lang="en") == ["gopher_quality:too_few_stop_words"]
    assert reasons(GOPHER, sentence(50), lang="fi") == [None]
    assert reasons(GOPHER, sentence(50), lang=None) == [None]


def test_mean_word_length_is_not_applied_to_text_written_without_spaces():
    text = (
        "雨水花园是一种低于周围地面的小型绿地，"
        "下雨时可以收集从屋顶、道路和广场流下来的雨水，让雨水慢慢渗入土壤深处。"
    )
    assert len(text) - 4 == 50  # one word per Han character, punctuation aside
    assert reasons(GOPHER, text, text, lang="zh") == [None, None]
    assert reasons(GOPHER, text, lang=None) == [None]  # decided by script, not by label


# --- Gopher repetition ---------------------------------------------------------------------------


REPETITION = GopherRepetition(GopherRepetitionConfig())
# 15 characters, a single word: repeating it repeats no word n-gram.
LONG_WORD = "Wonderfulnesses"


def test_thirty_percent_duplicate_paragraphs_pass_and_more_fail():
    unique = [sentence(8, skip=8 * i) for i in range(6)]
    passing, failing = ("\n\n".join([*unique, *["Go on."] * (1 + n)]) for n in (3, 4))
    assert reasons(REPETITION, passing, failing) == [None, "gopher_repetition:dup_para_frac"]


def test_twenty_percent_duplicate_paragraph_characters_pass_and_more_fail():
    paragraphs = [LONG_WORD, sentence(3), sentence(3, skip=3), sentence(4, skip=6), LONG_WORD]
    passing = "\n\n".join(paragraphs)
    failing = passing.replace(filler(1, skip=6)[0], "bb")
    assert (len(passing), len(failing)) == (75, 74)  # 15 / 75 = 0.2; 15 / 74 > 0.2
    assert reasons(REPETITION, passing, failing) == [None, "gopher_repetition:dup_para_char_frac"]


def test_thirty_percent_duplicate_lines_pass_and_more_fail():
    unique = [sentence(8, skip=8 * i) for i in range(6)]
    passing, failing = ("\n".join([*unique, *["Go on."] * (1 + n)]) for n in (3, 4))
    assert reasons(REPETITION, passing, failing) == [None, "gopher_repetition:dup_line_frac"]


def test_twenty_percent_duplicate_line_characters_pass_and_more_fail():
    lines = [LONG_WORD, sentence(3), sentence(4, skip=3), sentence(4, skip=7), LONG_WORD]
    passing = "\n".join(lines)
    failing = passing.replace(filler(1, skip=7)[0], "bb")
    assert (len(passing), len(failing)) == (75, 74)
    assert reasons(REPETITION, passing, failing) == [None, "gopher_repetition:dup_line_char_frac"]


@pytest.mark.parametrize(("n", "times", "threshold"), [(2, 5, 0.20), (3, 3, 0.18), (4, 2, 0.16)])
def test_top_ngram_character_fraction_at_threshold_passes_and_above_fails(n, times, threshold):
    repeated = 3 * n * times
    total = smallest_total(repeated, threshold)
    phrase = " ".join(PHRASE[:n])
    passing = interleave(phrase, times, filler_chars(total - repeated))
    failing = interleave(phrase, times, filler_chars(total - repeated - 1))
    assert reasons(REPETITION, passing, failing) == [None, f"gopher_repetition:top_{n}_gram"]


@pytest.mark.parametrize(
    ("n", "threshold"), [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)]
)
def test_duplicate_ngram_character_fraction_at_threshold_passes_and_above_fails(n, threshold):
    repeated = 2 * 3 * n  # both occurrences count
    total = smallest_total(repeated, threshold)
    phrase = " ".join(PHRASE[:n])
    passing = interleave(phrase, 2, filler_chars(total - repeated))
    failing = interleave(phrase, 2, filler_chars(total - repeated - 1))
    assert reasons(REPETITION, passing, failing) == [None, f"gopher_repetition:dup_{n}_gram"]


def test_overlapping_duplicate_ngrams_count_each_word_once():
    # Six phrase words twice: two 5-grams repeat, overlapping in four words; the repeated words
    # have 36 of the 48 letters (0.75), where counting each 5-gram's letters would give 60.
    text = " ".join([*PHRASE[:6], "bcd", "bcf", *PHRASE[:6], "bcg", "bch"])
    only_5grams = {f"top_{n}gram_char_frac": 1.0 for n in (2, 3, 4)} | {
        f"dup_{n}gram_char_frac": 1.0 for n in range(6, 11)
    }
    at = GopherRepetitionConfig(**only_5grams, dup_5gram_char_frac=0.75)
    below = GopherRepetitionConfig(**only_5grams, dup_5gram_char_frac=0.74)
    assert reasons(GopherRepetition(at), text) == [None]
    assert reasons(GopherRepetition(below), text) == ["gopher_repetition:dup_5_gram"]


def test_ngrams_of_text_without_spaces_are_two_characters_per_word():
    # The same shape twice: a 5-unit phrase repeated, 10 of 50 units. As words that is 5-grams
    # over 0.15; as Han characters it is 2.5 words, under every rule.
    han = [chr(0x4E00 + i) for i in range(45)]
    chinese = "".join(han[:20] + han[40:45] + han[20:40] + han[40:45]) + "。"
    words = " ".join(filler(20) + PHRASE[:5] + filler(20, skip=20) + PHRASE[:5]) + "."
    assert reasons(REPETITION, chinese, lang="zh") == [None]
    assert reasons(REPETITION, words) == ["gopher_repetition:dup_5_gram"]


def test_ngrams_do_not_run_across_documents():
    first = " ".join([*filler(40), *PHRASE[:5]])
    second = " ".join([*PHRASE[:5], *filler(40, skip=40)])
    assert reasons(REPETITION, first, second) == [None, None]


# --- C4 ------------------------------------------------------------------------------------------


C4_DEFAULT = C4(C4Config())
SENTENCES = [
    "The river rose quickly after the storm.",
    "Farmers moved their cattle to higher ground.",
    "By evening the main road was closed.",
    "Volunteers filled sandbags near the bridge.",
    "The water began to fall two days later.",
]


def c4_texts(config: C4Config, *texts: str) -> list[str]:
    kept, _ = apply_filters(docs(*texts), [C4(config)])
    return kept.column("text").to_pylist()


def test_c4_five_sentences_pass_and_four_fail():
    passing, failing = "\n".join(SENTENCES), "\n".join(SENTENCES[:4])
    assert reasons(C4_DEFAULT, passing, failing) == [None, "c4:too_few_sentences"]


def test_c4_counts_every_sentence_of_a_line_including_cjk_full_stops():
    three_and_two = f"{' '.join(SENTENCES[:3])}\n今天下雨了。我们在家里看书。"
    assert reasons(C4_DEFAULT, three_and_two) == [None]


# Five short sentences of everyday prose per script, each ended by its script's full stop.
PROSE = {
    "hindi": "आज मौसम बहुत अच्छा है। हम पार्क में घूमने गए। बच्चे खेल रहे थे। मैंने चाय पी। शाम को हम घर लौट आए।",
    "urdu": "آج موسم بہت اچھا ہے۔ ہم پارک میں گئے۔ بچے کھیل رہے تھے۔ میں نے چائے پی۔ شام کو ہم گھر واپس آئے۔",
    "armenian": (
        "Այսօր եղանակը շատ լավ է։ Մենք գնացինք այգի։ Երեխաները խաղում էին։ Ես թեյ խմեցի։ "
        "Երեկոյան մենք վերադարձանք տուն։"
    ),
    "amharic": "ዛሬ አየሩ በጣም ጥሩ ነው። ወደ መናፈሻ ሄድን። ልጆቹ እየተጫወቱ ነበር። ቡና ጠጣሁ። ማታ ወደ ቤት ተመለስን።",
    "burmese": (
        "ဒီနေ့ ရာသီဥတု အရမ်းကောင်းတယ်။ ကျွန်တော်တို့ ပန်းခြံကို သွားခဲ့တယ်။ ကလေးတွေ ကစားနေကြတယ်။ "
        "ကျွန်တော် လက်ဖက်ရည် သောက်ခဲ့တယ်။ ညနေ အိမ်ပြန်ခဲ့ကြတယ်။"
    ),
    "khmer": "ថ្ងៃនេះអាកាសធាតុល្អណាស់។ យើងបានទៅសួនច្បារ។ ក្មេងៗកំពុងលេង។ ខ្ញុំបានផឹកតែ។ ពេលល្ងាចយើងត្រឡប់មកផ្ទះវិញ។",
    "arabic": "هل تحب القهوة؟ نعم، أحبها كثيرا. نشربها كل صباح. أمي تصنعها بالهيل. الجو بارد اليوم.",
    "chinese": "今天下雨了。我们在家里看书。妈妈做了饺子！你想吃吗？明天会晴天。",
    "japanese": "今日は雨です。私たちは家で本を読みました。母は料理を作りました。おいしかった！明日は晴れるでしょうか？",
    "english": " ".join(SENTENCES),
}


@pytest.mark.parametrize("script", PROSE)
def test_sentences_are_counted_by_the_full_stops_of_every_script(script):
    assert base.sentence_counts(pa.array([PROSE[script]], pa.large_string())).tolist() == [5]


@pytest.mark.parametrize("script", PROSE)
def test_c4_keeps_five_sentences_of_prose_in_any_script_and_removes_four(script):
    sentences = re.findall(rf".+?[{base.SENTENCE_STOPS}.!?]\s*", PROSE[script])
    assert len(sentences) == 5
    four = "".join(sentences[:4])
    assert reasons(C4_DEFAULT, PROSE[script], four) == [None, "c4:too_few_sentences"]


SENTENCE_COUNTS = [
    ("Chapter 54. System Views", 0),
    ("54. System Views\n3.2. Installing the package\nStep 4. Open the file", 0),
    ("The value rose from 3.14 to 2.72 in 2024, a fall of 13.4 percent.", 1),
    ("It opened in 1954. It closed in 2001.", 2),
    ("Dr. Smith met Mr. Brown, e.g. at noon, and cf. the notes by John R. R. Tolkien.", 1),
    ("He met John F. Kennedy and George R. R. Martin.", 1),
    ("Returns the number of leading zeros of x, of type T. Then it stops.", 2),
    ('She asked "Why?" and left. He stayed (as always.) Then it rained!', 4),
    ("Wait... is that all?! Yes.", 3),
    ("See logging.html and www.python.org for details", 0),
]


@pytest.mark.parametrize(("text", "count"), SENTENCE_COUNTS)
def test_sentence_ends_skip_section_numbers_decimals_and_abbreviations(text, count):
    assert base.sentence_counts(pa.array([text], pa.large_string())).tolist() == [count]


def test_sentence_counts_of_a_batch_are_those_of_its_texts_alone():
    # Some texts of the batch need the second pass over initials ("R. R."), others none.
    texts, counts = zip(*SENTENCE_COUNTS, strict=True)
    batch = pa.array([*texts, "", None], pa.large_string())
    assert base.sentence_counts(batch)[:-1].tolist() == [*counts, 0]


def test_c4_lines_without_a_sentence_end_are_kept_but_are_no_sentence():
    menu = ["Subscribe to our newsletter", "Share this article on Facebook"]
    assert reasons(C4_DEFAULT, "\n".join([*SENTENCES[:4], *menu])) == ["c4:too_few_sentences"]
    assert c4_texts(C4Config(), "\n".join([*SENTENCES, *menu])) == ["\n".join([*SENTENCES, *menu])]


def test_c4_lorem_ipsum_removes_the_document():
    placeholder = "\n".join([*SENTENCES, "Lorem ipsum dolor sit amet, consectetur adipiscing."])
    assert reasons(C4_DEFAULT, placeholder) == ["c4:lorem_ipsum"]


def test_c4_curly_bracket_rule_is_off_by_default_and_removes_code_pages_when_on():
    with_code = "\n".join([*SENTENCES, 'Pass options as {"level": 3} to the compressor.'])
    assert reasons(C4_DEFAULT, with_code) == [None]
    assert reasons(C4(C4Config(drop_curly_bracket_docs=True)), with_code) == ["c4:curly_bracket"]


def test_c4_drops_boilerplate_lines_and_keeps_paragraph_breaks():
    page = "\n".join(
        [
            SENTENCES[0],
            "Please enable JavaScript to view the comments.",
            SENTENCES[1],
            "Share",
            "",
            "This site uses cookies to improve your experience.",
            "",
            f"{SENTENCES[2]}[1] {SENTENCES[3]}[citation needed]",
            "See " + "x" * 1001 + " for details.",
            "See " + "y" * 1000 + " for details.",
            SENTENCES[4],
        ]
    )
    assert c4_texts(C4Config(), page) == [
        f"{SENTENCES[0]}\n{SENTENCES[1]}\n\n{SENTENCES[2]} {SENTENCES[3]}\n"
        f"See {'y' * 1000} for details.\n{SENTENCES[4]}"
    ]


def test_c4_leaves_one_blank_line_between_paragraphs_and_none_at_the_ends():
    # The one-word lines go, leaving runs of blank lines, and blank lines at both ends.
    page = f"\n\nMenu\n\n{SENTENCES[0]}\n\nShort\n\n{SENTENCES[1]}\n\n\n\n{SENTENCES[2]}\nEnd\n\n"
    expected = f"{SENTENCES[0]}\n\n{SENTENCES[1]}\n\n{SENTENCES[2]}"
    texts = c4_texts(C4Config(min_sentences=0), page, "Home\n\n\nNext", "\n")
    assert texts == [expected, "", ""]


def test_c4_terminal_punctuation_rule_when_on_keeps_cjk_and_quotes_and_drops_ellipses():
    kept_lines = [*SENTENCES, "今天下雨了，我们在家里看书。", 'He said "the road is closed."']
    page = "\n".join([*kept_lines, "A heading without a full stop", "And more to come..."])
    config = C4Config(drop_lines_without_terminal_punct=True)
    assert c4_texts(config, page) == ["\n".join(kept_lines)]


def test_c4_keeps_lines_of_three_words_and_drops_lines_of_two():
    page = "\n".join([*SENTENCES, "Read this first.", "Read on."])
    assert c4_texts(C4Config(), page) == ["\n".join([*SENTENCES, "Read this first."])]


# --- FineWeb -------------------------------------------------------------------------------------


FINEWEB = FineWeb(FineWebConfig())


def long_lines(count: int, skip: int = 0) -> list[str]:
    """Distinct lines of 8 words (31 characters), no end punctuation."""
    return [sentence(8, skip=skip + 8 * i) for i in range(count)]


def test_fineweb_lines_ending_in_punctuation_above_twelve_percent_pass_and_at_it_fail():
    lines = long_lines(25)
    passing, failing = ("\n".join([f"{x}." for x in lines[:n]] + lines[n:]) for n in (4, 3))
    assert reasons(FINEWEB, passing, failing) == [None, "fineweb:line_punct_ratio"]


def test_fineweb_line_punctuation_includes_cjk_full_stops():
    assert reasons(FINEWEB, "\n".join(f"{line}。" for line in long_lines(5))) == [None]


def test_fineweb_short_lines_below_two_thirds_pass_and_at_it_fail():
    short = [f"{sentence(4, skip=4 * i)}." for i in range(67)]  # 16 characters each
    long = [f"{line}." for line in long_lines(34, skip=1000)]
    passing, failing = ("\n".join(short[:n] + long[: 100 - n]) for n in (66, 67))
    assert reasons(FINEWEB, passing, failing) == [None, "fineweb:short_line_ratio"]


def test_fineweb_duplicated_line_characters_below_ten_percent_pass_and_at_it_fail():
    lines = [f"{line}." for line in long_lines(10)]
    passing = "\n".join([*lines, lines[0]])  # 1 of 11 equal lines repeats
    failing = "\n".join([*lines[:9], lines[0]])  # 1 of 10
    assert reasons(FINEWEB, passing, failing) == [None, "fineweb:char_dup_ratio"]


def test_fineweb_line_breaks_per_word_up_to_three_tenths_pass_and_more_fail():
    lines = [" ".join(filler(3, length=10, skip=3 * i)) + "." for i in range(10)]
    fewer_words = [*lines[:9], " ".join(filler(2, length=16)) + "."]
    passing, failing = "\n".join(lines), "\n".join(fewer_words)  # 9 breaks: 30 and 29 words
    assert reasons(FINEWEB, passing, failing) == [None, "fineweb:list_ratio"]


def test_fineweb_ignores_blank_lines_between_paragraphs():
    paragraphs = [f"{line}." for line in long_lines(4)]
    assert reasons(FINEWEB, "\n\n".join(paragraphs)) == [None]


# --- language ------------------------------------------------------------------------------------


def test_language_allow_list_and_score_threshold():
    only = Language(LanguageConfig(languages=("en", "de")))
    assert reasons(only, "x", lang="de", score=0.65) == [None]
    assert reasons(only, "x", lang="de", score=0.64) == ["language:low_score"]
    assert reasons(only, "x", lang="fr", score=0.99) == ["language:not_allowed"]
    assert reasons(only, "x", lang=None, score=None) == ["language:not_allowed"]


def test_language_with_empty_allow_list_keeps_any_language_identified_surely():
    any_language = Language(LanguageConfig())
    assert reasons(any_language, "x", lang="sw", score=0.9) == [None]
    assert reasons(any_language, "x", lang=None, score=None) == ["language:low_score"]


# --- whole pages through the default filters -----------------------------------------------------


def run_default(*texts: str, lang: str = "en") -> tuple[pa.Table, pa.Table]:
    return apply_filters(docs(*texts, lang=lang), build_filters(FiltersConfig()))


@pytest.mark.parametrize(
    ("text", "lang"),
    [(ENGLISH, "en"), (GERMAN, "de"), (RUSSIAN, "ru"), (CHINESE, "zh"), (TECHNICAL, "en")],
    ids=["english", "german", "russian", "chinese", "technical"],
)
def test_good_pages_pass_all_default_filters(text, lang):
    kept, removed = run_default(text, lang=lang)
    assert (kept.num_rows, removed.num_rows) == (1, 0)


def test_chinese_article_keeps_its_text_unchanged():
    kept, _ = run_default(CHINESE, lang="zh")
    assert kept.column("text").to_pylist() == [CHINESE]


def test_technical_page_keeps_its_prose_and_code_lines_of_three_or_more_words():
    kept, _ = run_default(TECHNICAL)
    text = kept.column("text")[0].as_py()
    assert 'The settings dictionary, for example {"level": 3, "threads": 2}, controls' in text
    assert 'with open(path, "rb") as raw:' in text
    assert "\nimport io\n" not in text  # C4 drops lines of fewer than three words


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (KEYWORD_SPAM, "gopher_repetition:top_2_gram"),
        ("\n".join(["Claim your free prize now."] * 50), "gopher_repetition:dup_line_frac"),
        (NAVIGATION, "c4:too_few_sentences"),
        (CHINESE_SPAM, "gopher_repetition:top_2_gram"),
        (NOT_FOUND, "gopher_quality:too_few_words"),
    ],
    ids=["keyword-spam", "repeated-line", "navigation", "chinese-spam", "short-page"],
)
def test_bad_pages_fail_with_the_expected_rule(text, reason):
    kept, removed = run_default(text, lang="zh" if text == CHINESE_SPAM else "en")
    assert kept.num_rows == 0
    assert removed.column("reason").to_pylist() == [reason]


# --- apply_filters and config -------------------------------------------------------------------


def test_every_row_is_kept_or_removed_once_with_exactly_one_reason():
    texts = [ENGLISH, KEYWORD_SPAM, TECHNICAL, NAVIGATION, NOT_FOUND, GERMAN, "", CHINESE]
    langs = ["en", "en", "en", "en", "en", "de", None, "zh"]
    table = docs(*texts).set_column(2, "lang", pa.array(langs, pa.string()))
    kept, removed = apply_filters(table, build_filters(FiltersConfig()))
    ids = kept.column("id").to_pylist() + removed.column("id").to_pylist()
    assert sorted(ids) == sorted(table.column("id").to_pylist())
    assert removed.column("reason").null_count == 0
    counts = pc.value_counts(removed.column("reason")).field("counts")
    assert pc.sum(counts).as_py() == removed.num_rows == 4
    assert kept.column("id").to_pylist() == ["doc#0", "doc#2", "doc#5", "doc#7"]
    assert kept.column_names == table.column_names
    assert removed.column_names == [*table.column_names, "reason"]


def test_removed_rows_keep_their_text_and_kept_rows_get_c4_edits():
    page = "\n".join([*SENTENCES, "Please enable JavaScript to continue."])
    kept, removed = apply_filters(docs(page, "\n".join(SENTENCES[:2])), [C4_DEFAULT])
    assert kept.column("text").to_pylist() == ["\n".join(SENTENCES)]
    assert removed.column("text").to_pylist() == ["\n".join(SENTENCES[:2])]
    assert kept.schema.field("text").type == pa.large_string()


def test_empty_table_and_no_filters():
    kept, removed = apply_filters(docs(), build_filters(FiltersConfig()))
    assert (kept.num_rows, removed.num_rows) == (0, 0)
    kept, removed = apply_filters(docs(NOT_FOUND), [])
    assert (kept.num_rows, removed.num_rows) == (1, 0)


@pytest.mark.parametrize("text", ["", "* -- * =>", "ok"], ids=["empty", "symbols", "one-word"])
def test_every_filter_gives_a_verdict_on_texts_without_sentences(text):
    verdicts = [reasons(f, text, lang=None, score=None) for f in build_filters(FiltersConfig())]
    assert verdicts == [
        ["language:low_score"],
        [None],
        ["gopher_quality:too_few_words"],
        [None],
        ["c4:too_few_sentences"],
        ["fineweb:line_punct_ratio"],
    ]


def test_build_filters_runs_language_first_and_skips_disabled_families():
    names = [f.name for f in build_filters(FiltersConfig())]
    assert names == [
        "language",
        "gopher_repetition",
        "gopher_quality",
        "compression",
        "c4",
        "fineweb",
    ]
    config = FiltersConfig(c4=C4Config(enabled=False), language=LanguageConfig(enabled=False))
    names = [f.name for f in build_filters(config)]
    assert names == ["gopher_repetition", "gopher_quality", "compression", "fineweb"]


def test_filter_config_keys_have_types_toml_and_flags_support():
    keys = {spec.key: spec for spec in config_keys(FiltersConfig)}
    allowed = {str, int, float, bool, tuple[str, ...]}
    flagged = [spec for spec in keys.values() if not spec.table_list]
    assert all(spec.type in allowed and spec.help for spec in flagged)
    assert [spec.key for spec in keys.values() if spec.table_list] == ["custom"]
    assert keys["gopher_quality.min_words"].default == 50
    assert keys["fineweb.char_duplicates_ratio"].default == 0.1
    assert keys["language.min_score"].default == 0.65
    assert keys["language.languages"].default == ()


# --- splits shared by the filters ----------------------------------------------------------------


def test_apply_filters_splits_the_words_of_a_batch_once(monkeypatch):
    calls = []

    def counted(texts):
        calls.append(len(texts))
        return split_line_words(texts)

    monkeypatch.setattr(base, "split_line_words", counted)
    page = "\n".join([*SENTENCES, "Please enable JavaScript to view the comments.", ENGLISH])
    table = docs(ENGLISH, TECHNICAL, page, KEYWORD_SPAM, NOT_FOUND)
    kept, removed = apply_filters(table, build_filters(FiltersConfig()))
    assert removed.column("reason").to_pylist() == [
        "gopher_repetition:top_2_gram",
        "gopher_quality:too_few_words",
    ]
    assert "JavaScript" not in kept.column("text")[2].as_py()
    assert calls == [5]


@pytest.mark.parametrize("filt", build_filters(FiltersConfig()), ids=lambda f: f.name)
def test_filters_decide_alike_given_splits_or_not(filt):
    table = docs(
        ENGLISH, TECHNICAL, NAVIGATION, KEYWORD_SPAM, CHINESE, f"{ENGLISH}[1]\n\nok [edit]"
    )
    texts = table.column("text")
    alone, given = filt(table), filt(table, splits=Splits.of(texts))
    assert given.keep.tolist() == alone.keep.tolist()
    assert given.reason.equals(alone.reason)
    if alone.edited is not None:
        assert given.edited.texts.equals(alone.edited.texts)


def test_c4_counts_the_words_lines_have_once_citation_marks_are_removed():
    page = "\n".join([*SENTENCES, "Read [1] [2] on.", "Now [edit] read this."])
    assert c4_texts(C4Config(), page) == ["\n".join([*SENTENCES, "Now read this."])]
    kept = c4_texts(C4Config(remove_citations=False), page)
    assert kept == ["\n".join([*SENTENCES, "Read [1] [2] on.", "Now [edit] read this."])]


def test_fineweb_after_c4_judges_the_texts_c4_edited():
    # Ten lines of three words: 9 line breaks per 30 words, FineWeb's limit. Lines of two words
    # between them, which C4 drops, would put the page over it.
    three = [" ".join(filler(3, length=10, skip=3 * i)) + "." for i in range(10)]
    two = [" ".join(filler(2, length=16, skip=2 * i)) + "." for i in range(5)]
    page = "\n".join(line for pair in itertools.zip_longest(three, two) for line in pair if line)
    assert reasons(FINEWEB, page) == ["fineweb:list_ratio"]
    assert reasons(FINEWEB, "\n".join(three)) == [None]
    kept, removed = apply_filters(docs(page), [C4_DEFAULT, FINEWEB])
    assert kept.column("text").to_pylist() == ["\n".join(three)]
    assert removed.num_rows == 0


def test_a_view_cannot_be_changed_once_made():
    view = Splits.of(pa.array(["one two\nthree"], pa.large_string()))
    with pytest.raises(AttributeError, match="immutable"):
        view.line_word_counts = [0, 0]
    with pytest.raises(AttributeError, match="immutable"):
        del view.texts
    assert view.line_word_counts.tolist() == [2, 1]


@pytest.mark.parametrize("computed", [(), ("words",), ("line_word_counts", "nonempty_lines")])
def test_a_narrowed_view_equals_a_fresh_view_of_the_kept_texts(computed):
    texts = pa.array([ENGLISH, "", TECHNICAL, "a b\n\nc", CHINESE], pa.large_string())
    keep = np.array([True, False, True, False, True])
    view = Splits.of(texts)
    for name in computed:
        getattr(view, name)
    narrowed, fresh = view.filter(keep), Splits.of(texts.filter(pa.array(keep)))
    assert narrowed.texts.equals(fresh.texts)
    assert narrowed.lines.equals(fresh.lines)
    assert narrowed.line_rows.tolist() == fresh.line_rows.tolist()
    assert narrowed.line_word_counts.tolist() == fresh.line_word_counts.tolist()
    assert narrowed.word_counts.tolist() == fresh.word_counts.tolist()
    assert lowered_words(narrowed) == lowered_words(fresh)


def lowered_words(view: Splits) -> list[tuple[int, str]]:
    ids, distinct = view.words.lowered
    return list(
        zip(view.words.rows.tolist(), distinct.take(pa.array(ids)).to_pylist(), strict=True)
    )


def test_a_rewritten_view_counts_the_words_of_the_edited_lines():
    view = Splits.of(pa.array(["Read [1] [2] on.\nNow [edit] read this."], pa.large_string()))
    edited = pa.array(["Read   on.\nNow  read this."], pa.large_string())
    rewritten = view.rewritten(edited)
    assert rewritten.texts.equals(edited)
    assert rewritten.line_word_counts.tolist() == Splits.of(edited).line_word_counts.tolist()
    assert rewritten.word_counts.tolist() == [5]
