"""Checks of the committed sample crawl in sample_data/ against its generator and its labels."""

from __future__ import annotations

import difflib
import html
import importlib.util
import itertools
import json
import re
import sys
import xml.etree.ElementTree as ET
import zlib
from collections import defaultdict
from pathlib import Path

import pytest
import zstandard
from fastwarc.warc import ArchiveIterator, WarcRecordType
from warcio.archiveiterator import ArchiveIterator as WarcioIterator

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
LABELS_PATH = SAMPLE_DIR / "labels.json"
WARC_FILES = sorted(SAMPLE_DIR.glob("crawl-*.warc.gz"))
WET_FILE = SAMPLE_DIR / "wet-00000.warc.wet.gz"
JSONL_FILE = SAMPLE_DIR / "dump-00000.jsonl.zst"
COMMITTED_FILES = [*WARC_FILES, WET_FILE, JSONL_FILE, LABELS_PATH]
BLOCK_TAG = re.compile(
    r"</?(?:p|h[1-6]|li|ul|ol|blockquote|pre|table|thead|tbody|tr|td|th|div|section|article|br)\b[^>]*>"
)
ARTICLE_ELEMENT = re.compile(r"<article\b[^>]*>(.*?)</article>", re.S)
HAN = re.compile(r"[\u4e00-\u9fff]")
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
PROSE_KINDS = ("article", "exact_dup", "near_dup")


def load_generator():
    """Import sample_data/generate.py, which is a script rather than a package module."""
    spec = importlib.util.spec_from_file_location(
        "sample_data_generate", SAMPLE_DIR / "generate.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def normalize(text: str) -> str:
    """Collapse all whitespace (including no-break spaces) to single spaces."""
    return " ".join(text.split())


def units(text: str, lang: str) -> list[str]:
    """Edit units as labels.json defines them: words, or non-space characters for zh."""
    return [char for char in text if not char.isspace()] if lang == "zh" else text.split()


def article_text(markup: str) -> str:
    """Visible text of the page's <article> element, one line per block element."""
    inner = ARTICLE_ELEMENT.search(markup).group(1)
    return html.unescape(re.sub(r"<[^>]+>", "", BLOCK_TAG.sub("\n", inner)))


def gzip_members(data: bytes) -> list[tuple[bytes, bytes]]:
    """Split concatenated gzip members into (10-byte header, decompressed data) pairs."""
    members = []
    while data:
        decompressor = zlib.decompressobj(31)
        members.append((data[:10], decompressor.decompress(data) + decompressor.flush()))
        data = decompressor.unused_data
    return members


@pytest.fixture(scope="module")
def generator():
    return load_generator()


@pytest.fixture(scope="module")
def labels() -> dict:
    return json.loads(LABELS_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def documents(labels) -> dict:
    return labels["documents"]


@pytest.fixture(scope="module")
def records() -> dict:
    """Every document record by URL: file, payload bytes, HTTP status and headers (WARC), text (WET, JSONL)."""
    found: dict = {}
    for path in WARC_FILES:
        for record in ArchiveIterator(str(path), record_types=WarcRecordType.response):
            url = record.headers["WARC-Target-URI"]
            found[url] = {
                "file": path.name,
                "payload": record.reader.read(),
                "status": record.http_headers.status_code,
                "content_type": record.http_headers.get("Content-Type"),
            }
    for record in ArchiveIterator(str(WET_FILE), record_types=WarcRecordType.conversion):
        found[record.headers["WARC-Target-URI"]] = {
            "file": WET_FILE.name,
            "text": record.reader.read().decode("utf-8"),
        }
    data = zstandard.ZstdDecompressor().decompress(JSONL_FILE.read_bytes())
    for line in data.decode("utf-8").splitlines():
        item = json.loads(line)
        found[item["url"]] = {"file": JSONL_FILE.name, "text": item["text"], "meta": item["meta"]}
    return found


@pytest.fixture(scope="module")
def main_texts(records, documents) -> dict:
    """Main text of every prose document, one line per block; WET texts keep their boilerplate lines."""
    texts = {}
    for url, label in documents.items():
        if label["kind"] not in PROSE_KINDS:
            continue
        record = records[url]
        if label["format"] == "warc":
            texts[url] = article_text(record["payload"].decode(label["charset"]))
        else:
            texts[url] = record["text"]
    return texts


def test_regenerating_reproduces_committed_files_byte_for_byte(generator, tmp_path):
    generator.generate(tmp_path)
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == sorted(path.name for path in COMMITTED_FILES)
    for name in written:
        assert (tmp_path / name).read_bytes() == (SAMPLE_DIR / name).read_bytes(), name


def test_every_record_has_a_label_and_every_label_has_a_record(records, documents, labels):
    record_urls, label_urls = defaultdict(set), defaultdict(set)
    for url, record in records.items():
        record_urls[record["file"]].add(url)
    for url, label in documents.items():
        label_urls[label["file"]].add(url)
    assert record_urls == label_urls
    assert sum(len(urls) for urls in record_urls.values()) == len(records) == len(documents)
    assert {name: entry["documents"] for name, entry in labels["files"].items()} == {
        name: len(urls) for name, urls in label_urls.items()
    }
    for path in WARC_FILES:
        with path.open("rb") as stream:
            warcio_urls = {
                record.rec_headers.get_header("WARC-Target-URI")
                for record in WarcioIterator(stream)
                if record.rec_type == "response"
            }
        assert warcio_urls == label_urls[path.name]


def test_warc_and_wet_records_have_valid_digests_and_exact_content_length():
    for path in [*WARC_FILES, WET_FILE]:
        plain = list(ArchiveIterator(str(path), parse_http=False))
        assert plain[0].record_type == WarcRecordType.warcinfo
        assert sum(1 for _ in ArchiveIterator(str(path), verify_digests=True)) == len(plain)
        for record in ArchiveIterator(str(path), parse_http=False):
            assert record.verify_block_digest(), path.name
        for record in ArchiveIterator(str(path), record_types=WarcRecordType.response):
            assert record.verify_payload_digest(), record.headers["WARC-Target-URI"]
        with path.open("rb") as stream:
            warcio_count = 0
            for record in WarcioIterator(stream):
                record.content_stream().read()
                warcio_count += 1
        members = gzip_members(path.read_bytes())
        assert warcio_count == len(members) == len(plain)
        for header, record in members:
            assert header[3] == 0 and header[4:8] == b"\x00\x00\x00\x00", (
                "gzip flags and mtime must be zero"
            )
            head, _, rest = record.partition(b"\r\n\r\n")
            length = int(re.search(rb"\r\nContent-Length: (\d+)\r\n", head + b"\r\n").group(1))
            assert head.startswith(b"WARC/1.0\r\n")
            assert len(rest) == length + 4 and rest.endswith(b"\r\n\r\n")


def test_jsonl_dump_is_one_zstd_frame_with_content_size():
    data = JSONL_FILE.read_bytes()
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    text = decompressor.decompress(data)
    assert decompressor.unused_data == b""
    assert zstandard.frame_content_size(data) == len(text)
    for line in text.decode("utf-8").splitlines():
        assert list(json.loads(line)) == ["id", "url", "text", "meta"]


def test_content_type_labels_match_http_headers(records, documents):
    for url, label in documents.items():
        if label["format"] == "warc":
            assert records[url]["content_type"] == label["content_type"], url
        else:
            assert label["content_type"] is None
    content_types = {label["content_type"] for label in documents.values()}
    assert {
        None,
        "application/xhtml+xml",
        "text/xml",
        "image/png",
        "image/jpeg",
        "application/pdf",
    } <= content_types


def test_kind_counts_meet_the_minimums(documents):
    kinds = defaultdict(int)
    for label in documents.values():
        kinds[label["kind"]] += 1
    for kind in ("nav", "spam", "repeated", "short"):
        assert kinds[kind] >= 10, kind
    assert kinds["exact_dup"] >= 15 and kinds["near_dup"] >= 20
    assert kinds["binary"] >= 3 and kinds["redirect"] >= 1 and kinds["not_found"] >= 1


def test_duplicates_point_to_articles_and_some_cross_files(documents):
    crossing = 0
    for label in documents.values():
        if label["kind"] in ("exact_dup", "near_dup"):
            original = documents[label["duplicate_of"]]
            assert original["kind"] == "article" and original["lang"] == label["lang"]
            crossing += original["file"] != label["file"]
        else:
            assert label["duplicate_of"] is None and label["edit_rate"] is None
    assert crossing >= 15


def test_exact_duplicates_repeat_the_original_main_text(main_texts, documents):
    for url, label in documents.items():
        if label["kind"] != "exact_dup":
            continue
        assert label["edit_rate"] == 0.0
        original = normalize(main_texts[label["duplicate_of"]])
        if label["format"] == "wet":
            assert original in normalize(main_texts[url]), url
        else:
            assert normalize(main_texts[url]) == original, url


def test_near_duplicates_have_the_labelled_edit_rate(main_texts, documents):
    rates = []
    for url, label in documents.items():
        if label["kind"] != "near_dup":
            continue
        rate, lang = label["edit_rate"], label["lang"]
        assert 0.01 <= rate <= 0.10
        original, copy = (
            units(main_texts[label["duplicate_of"]], lang),
            units(main_texts[url], lang),
        )
        opcodes = difflib.SequenceMatcher(None, original, copy, autojunk=False).get_opcodes()
        if label["format"] == "wet":
            while opcodes[0][0] == "insert":
                opcodes.pop(0)
            while opcodes[-1][0] == "insert":
                opcodes.pop()
        measured = sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in opcodes if tag != "equal")
        expected = round(rate * len(original))
        assert measured == expected, url
        vocabulary_a, vocabulary_b = set(original), set(copy[opcodes[0][3] : opcodes[-1][4]])
        assert len(vocabulary_a & vocabulary_b) / len(vocabulary_a | vocabulary_b) > 0.9
        rates.append(rate)
    assert min(rates) < 0.03 and max(rates) > 0.08


def test_non_utf8_pages_decode_only_with_their_declared_charset(records, documents):
    legacy = {
        url: label for url, label in documents.items() if label["charset"] not in (None, "utf-8")
    }
    assert {label["charset"] for label in legacy.values()} == {"windows-1251", "iso-8859-1"}
    for url, label in legacy.items():
        payload = records[url]["payload"]
        with pytest.raises(UnicodeDecodeError):
            payload.decode("utf-8")
        markup = payload.decode(label["charset"])
        assert label["kind"] == "article"
        assert re.search(f'charset="?{label["charset"]}"', markup)
        if label["charset"] == "windows-1251":
            assert label["content_type"] == "text/html; charset=windows-1251"
            assert len(CYRILLIC.findall(article_text(markup))) > 500
        else:
            assert label["content_type"] == "text/html"
            assert re.search("[äöüßéèàç]", article_text(markup))


def test_binary_payloads_are_not_text(records, documents):
    signatures = {
        "image/png": b"\x89PNG\r\n\x1a\n",
        "image/jpeg": b"\xff\xd8\xff",
        "application/pdf": b"%PDF-",
    }
    binaries = [url for url, label in documents.items() if label["kind"] == "binary"]
    for url in binaries:
        label, payload = documents[url], records[url]["payload"]
        assert payload.startswith(signatures[label["content_type"]])
        assert label["lang"] is None and label["charset"] is None
        with pytest.raises(UnicodeDecodeError):
            payload.decode("utf-8")


def test_redirects_and_missing_pages_have_their_status(records, documents):
    for url, label in documents.items():
        if label["format"] != "warc":
            continue
        expected = {"redirect": 301, "not_found": 404}.get(label["kind"], 200)
        assert records[url]["status"] == expected, url
        if label["kind"] == "redirect":
            assert records[url]["payload"] == b""


def test_xhtml_and_xml_pages_are_well_formed(records, documents):
    xml_pages = [
        url
        for url, label in documents.items()
        if label["content_type"] in ("application/xhtml+xml", "text/xml")
    ]
    assert len(xml_pages) == 2
    for url in xml_pages:
        root = ET.fromstring(records[url]["payload"])
        assert root.tag == "{http://www.w3.org/1999/xhtml}html"


def test_languages_and_scripts_match_labels(main_texts, documents, records):
    langs = {label["lang"] for label in documents.values() if label["lang"]}
    assert langs >= {"en", "de", "fr", "es", "ru", "zh"}
    for url, label in documents.items():
        if url not in main_texts:
            continue
        text = main_texts[url]
        if label["lang"] == "zh":
            prose = [line for line in text.splitlines() if len(HAN.findall(line)) >= 20]
            assert sum(len(HAN.findall(line)) for line in prose) >= 300, url
            for line in prose:
                assert (
                    len(HAN.findall(line)) > 0.6 * len(line) and line.count(" ") <= len(line) // 100
                ), line
        elif label["lang"] == "ru":
            prose = [line for line in text.splitlines() if len(CYRILLIC.findall(line)) >= 20]
            assert sum(len(CYRILLIC.findall(line)) for line in prose) >= 300, url
            for line in prose:
                letters = [char for char in line if char.isalpha()]
                assert len(CYRILLIC.findall(line)) > 0.8 * len(letters), line
        else:
            assert not HAN.search(text) and not CYRILLIC.search(text), url
        if label["format"] == "jsonl":
            assert records[url]["meta"]["lang"] == label["lang"]


def test_unrelated_articles_are_not_near_duplicates(generator):
    shingles = defaultdict(list)
    for doc in generator.build_corpus():
        if doc.kind == "article":
            tokens = units(doc.content.main_text(), doc.lang)
            shingles[doc.lang].append({tuple(tokens[i : i + 5]) for i in range(len(tokens) - 4)})
    worst = 0.0
    for sets in shingles.values():
        for a, b in itertools.combinations(sets, 2):
            common = len(a & b)
            worst = max(worst, common / (len(a) + len(b) - common))
    assert worst < 0.1


def test_sizes_fit_the_budget(main_texts):
    assert sum(path.stat().st_size for path in COMMITTED_FILES) <= 5_000_000
    assert sum(len(text.encode("utf-8")) for text in main_texts.values()) >= 3_000_000
