"""A benchmark crawl of at least N MB of HTML, built from sample_data's generator with web-weight pages.

Each seed (20240317, 20240318, ...) writes one sample dump whose pages carry the markup of real
sites (see `PAGE_WEIGHTS` in sample_data/generate.py) into its own folder `seed-<seed>/`, until the
WARC files of all seeds hold `--html-mb` MB of HTML payloads. `crawl.json`, written last, lists the
WARC files and the HTML they hold; a folder that has it is reused as it is. One seed holds about 27.8 MB of
HTML in 292 pages, so 100 MB takes four seeds (111.6 MB, written in about 10 s).

    python benchmarks/crawl.py [--html-mb 100] [--root out/bench]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import shutil
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from fastwarc.warc import ArchiveIterator, WarcRecordType

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO / "out" / "bench"
MARKER = "crawl.json"
HTML_TYPES = ("text/html", "application/xhtml+xml")
# Bodies served without an HTML type that the pipeline still sniffs as HTML by their first bytes.
HTML_OPENINGS = (b"<!doctype html", b"<html", b"<?xml")

# Named, not __name__: this file runs as a script and is imported by benchmarks/clean.py.
log = logging.getLogger("benchmarks.crawl")


@dataclass(frozen=True)
class Crawl:
    """A built crawl: its WARC files and the HTML they hold (2xx HTML response bodies)."""

    folder: str
    seeds: tuple[int, ...]
    warcs: tuple[str, ...]
    html_bytes: int
    html_pages: int


def main() -> None:
    """Build (or find) the crawl and print what it holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html-mb", type=int, default=100, help="least MB of HTML the crawl holds")
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help="cache folder of benchmark crawls"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    crawl = build_crawl(args.html_mb, args.root)
    print(
        f"{crawl.folder}: {len(crawl.warcs)} WARC files from seeds {', '.join(map(str, crawl.seeds))}, "
        f"{crawl.html_pages} HTML pages, {crawl.html_bytes / 1e6:.1f} MB of HTML"
    )


def build_crawl(html_mb: int, root: Path = DEFAULT_ROOT) -> Crawl:
    """The crawl of at least `html_mb` MB of HTML in `root/crawl-<html_mb>mb/`, built unless complete."""
    folder = Path(root) / f"crawl-{html_mb}mb"
    marker = folder / MARKER
    if marker.exists():
        data = json.loads(marker.read_text())
        return Crawl(**{key: tuple(v) if isinstance(v, list) else v for key, v in data.items()})
    if folder.exists():
        shutil.rmtree(folder)  # an interrupted build: its seeds may be partly written
    generator = _load_generator()
    seeds, warcs, html_bytes, html_pages = [], [], 0, 0
    while html_bytes < html_mb * 1e6:
        seed = generator.DEFAULT_SEED + len(seeds)
        seed_folder = folder / f"seed-{seed}"
        generator.generate(seed_folder, seed, page_weight="web")
        seeds.append(seed)
        for warc in sorted(seed_folder.glob("crawl-*.warc.gz")):
            warcs.append(str(warc))
            for body, _ in html_pages_of(warc):
                html_bytes += len(body)
                html_pages += 1
        log.info("seed %d written: %.1f MB of HTML so far", seed, html_bytes / 1e6)
    crawl = Crawl(str(folder), tuple(seeds), tuple(warcs), html_bytes, html_pages)
    marker.write_text(json.dumps(asdict(crawl), indent=1) + "\n")
    return crawl


def html_pages_of(warc: Path) -> Iterator[tuple[bytes, str | None]]:
    """(body, HTTP charset) of every 2xx HTML response in a WARC file, as the pipeline selects them."""
    with open(warc, "rb") as stream:
        for record in ArchiveIterator(stream, record_types=WarcRecordType.response):
            if not 200 <= record.http_headers.status_code < 300:
                continue
            body = record.reader.read()
            mime = (record.http_content_type or "").lower()
            if mime in HTML_TYPES or body[:64].lstrip().lower().startswith(HTML_OPENINGS):
                yield body, record.http_charset


def _load_generator():
    """Import sample_data/generate.py, a script rather than a package module."""
    spec = importlib.util.spec_from_file_location(
        "sample_data_generate", REPO / "sample_data" / "generate.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script executes
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    main()
