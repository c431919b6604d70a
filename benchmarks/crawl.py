"""A benchmark crawl of at least N MB of HTML: generated web-weight pages, or a folder of real ones.

Generated: each seed (20240317, 20240318, ...) writes one sample dump whose pages carry the
markup of real sites (see `PAGE_WEIGHTS` in sample_data/generate.py) into its own folder
`seed-<seed>/`, until the WARC files of all seeds hold `--html-mb` MB of HTML payloads. One seed
holds about 27.8 MB of HTML in 292 pages, so 100 MB takes four seeds (111.6 MB, written in about
10 s). `crawl.json`, written last, lists the WARC files and the HTML they hold; a folder that has
it is reused as it is.

In few files (`--files N`): the same records joined into N WARC files, each the concatenation of
every Nth file (a gzip WARC of a member per record stays one when concatenated), in
`<crawl folder>-<N>files/`: a crawl of a few large files, which the readers must split to keep
every worker busy.

From pages (`--pages DIR`): every `.html`/`.htm` file under DIR (gzipped ones too) becomes a 200
response served as `text/html` without a charset, as many crawlers store pages; copies of the whole
set, each at its own host and in its own WARC file, are added until the crawl holds `--html-mb` MB.
The pipeline's clean stage does the same work on every copy, so this measures the clean stage on
real markup. Saved web pages are not shipped with corpusmill; one public set is the 134 pages of
more than 10 KB (news, blogs, shops, docs; 25.8 MB) under `tests/cache/` in the source archive of
trafilatura 0.9.0 (`pip download --no-deps --no-binary :all: trafilatura==0.9.0`). Another is a
Rust toolchain's documentation: `--pages ~/.rustup/toolchains/stable-*/share/doc/rust/html/
unstable-book --html-mb 164` gives 8 copies of its 831 pages of more than 10 KB (Rust 1.95), 8
WARC files of 5.5 MB, 6648 pages and 164.6 MB of HTML, the documentation crawl of
`benchmarks/run.py`.

    python benchmarks/crawl.py [--html-mb 100] [--pages DIR] [--files N] [--root out/bench]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import logging
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from fastwarc.warc import ArchiveIterator, WarcRecordType

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO / "out" / "bench"
MARKER = "crawl.json"
HTML_TYPES = ("text/html", "application/xhtml+xml")
# Bodies served without an HTML type that the pipeline still sniffs as HTML by their first bytes.
HTML_OPENINGS = (b"<!doctype html", b"<html", b"<?xml")
PAGE_SUFFIXES = (".html", ".htm", ".html.gz", ".htm.gz")
# Smaller files in a folder of saved pages are error pages and fragments, not pages.
MIN_PAGE_BYTES = 10_000

# Named, not __name__: this file runs as a script and is imported by benchmarks/clean.py.
log = logging.getLogger("benchmarks.crawl")


@dataclass(frozen=True)
class Crawl:
    """A built crawl: what it was made from, its WARC files (and their glob in `folder`) and the
    HTML they hold (2xx HTML response bodies)."""

    folder: str
    source: str
    glob: str
    warcs: tuple[str, ...]
    html_bytes: int
    html_pages: int


def main() -> None:
    """Build (or find) the crawl and print what it holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html-mb", type=int, default=100, help="least MB of HTML the crawl holds")
    add_pages_flag(parser)
    add_files_flag(parser)
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help="cache folder of benchmark crawls"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    crawl = crawl_for(args.html_mb, args.pages, args.root, args.files)
    print(
        f"{crawl.folder}: {len(crawl.warcs)} WARC files of {crawl.source}, "
        f"{crawl.html_pages} HTML pages, {crawl.html_bytes / 1e6:.1f} MB of HTML"
    )


def add_pages_flag(parser: argparse.ArgumentParser) -> None:
    """The `--pages DIR` flag every benchmark that measures on a crawl takes."""
    parser.add_argument(
        "--pages",
        type=Path,
        help="build the crawl from the saved HTML pages under this folder instead of generating it",
    )


def add_files_flag(parser: argparse.ArgumentParser) -> None:
    """The `--files N` flag: the crawl's records joined into N WARC files."""
    parser.add_argument(
        "--files", type=int, help="join the crawl's records into this many WARC files"
    )


def crawl_for(
    html_mb: int, pages: Path | None, root: Path = DEFAULT_ROOT, files: int | None = None
) -> Crawl:
    """The crawl a benchmark measures on: of the pages under `pages` if given, else generated;
    joined into `files` WARC files if given."""
    crawl = build_page_crawl(pages, html_mb, root) if pages else build_crawl(html_mb, root)
    return join_crawl(crawl, files) if files else crawl


def join_crawl(crawl: Crawl, files: int) -> Crawl:
    """The records of `crawl` in `files` WARC files, file i the concatenation of its files i,
    i + files, ..., in `<crawl folder>-<files>files/`, built unless complete."""
    folder = Path(f"{crawl.folder}-{files}files")
    joined = _finished_crawl(folder)
    if joined:
        return joined
    folder.mkdir(parents=True)
    warcs = []
    for index in range(files):
        warc = folder / f"joined-{index:04d}.warc.gz"
        with open(warc, "wb") as out:
            for part in crawl.warcs[index::files]:
                out.write(Path(part).read_bytes())
        warcs.append(str(warc))
    source = f"{crawl.source}, joined into {files} files"
    joined = Crawl(
        str(folder), source, "joined-*.warc.gz", tuple(warcs), crawl.html_bytes, crawl.html_pages
    )
    (folder / MARKER).write_text(json.dumps(asdict(joined), indent=1) + "\n")
    return joined


def build_crawl(html_mb: int, root: Path = DEFAULT_ROOT) -> Crawl:
    """The generated crawl of at least `html_mb` MB of HTML in `root/crawl-<html_mb>mb/`, built
    unless complete."""
    folder = Path(root) / f"crawl-{html_mb}mb"
    crawl = _finished_crawl(folder)
    if crawl:
        return crawl
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
    source = f"generated web-weight pages, seeds {seeds[0]}-{seeds[-1]}"
    crawl = Crawl(
        str(folder), source, "seed-*/crawl-*.warc.gz", tuple(warcs), html_bytes, html_pages
    )
    (folder / MARKER).write_text(json.dumps(asdict(crawl), indent=1) + "\n")
    return crawl


def build_page_crawl(pages: Path, html_mb: int, root: Path = DEFAULT_ROOT) -> Crawl:
    """A crawl of copies of the saved pages under `pages`, at least `html_mb` MB of HTML, in
    `root/pages-<digest of the page set>-<html_mb>mb/`, built unless complete."""
    files = sorted(
        path
        for path in Path(pages).rglob("*")
        if path.name.lower().endswith(PAGE_SUFFIXES) and path.is_file()
    )
    bodies = {path.relative_to(pages).as_posix(): _page_bytes(path) for path in files}
    bodies = {name: body for name, body in bodies.items() if len(body) >= MIN_PAGE_BYTES}
    if not bodies:
        raise SystemExit(f"{pages}: no .html or .htm file of {MIN_PAGE_BYTES} bytes or more")
    digest = hashlib.sha256(
        b"".join(name.encode() + hashlib.sha256(body).digest() for name, body in bodies.items())
    ).hexdigest()[:12]
    folder = Path(root) / f"pages-{digest}-{html_mb}mb"
    crawl = _finished_crawl(folder)
    if crawl:
        return crawl
    folder.mkdir(parents=True)
    generator = _load_generator()
    set_bytes = sum(map(len, bodies.values()))
    copies = max(1, -(-int(html_mb * 1e6) // set_bytes))
    warcs = []
    for copy in range(copies):
        warc = folder / f"copy-{copy:04d}.warc.gz"
        with open(warc, "wb") as out:
            for name, body in bodies.items():
                out.write(
                    gzip.compress(
                        _response(generator, f"https://copy-{copy}.pages.invalid/{name}", body),
                        6,
                        mtime=0,
                    )
                )
        warcs.append(str(warc))
    source = f"{len(bodies)} pages under {pages}, {copies} copies"
    crawl = Crawl(
        str(folder),
        source,
        "copy-*.warc.gz",
        tuple(warcs),
        set_bytes * copies,
        len(bodies) * copies,
    )
    (folder / MARKER).write_text(json.dumps(asdict(crawl), indent=1) + "\n")
    return crawl


def html_pages_of(warc: Path) -> Iterator[tuple[bytes, str | None]]:
    """(body, HTTP charset) of every 2xx HTML response in a WARC file, as the pipeline selects
    them."""
    with open(warc, "rb") as stream:
        for record in ArchiveIterator(stream, record_types=WarcRecordType.response):
            if not 200 <= record.http_headers.status_code < 300:
                continue
            body = record.reader.read()
            mime = (record.http_content_type or "").lower()
            if mime in HTML_TYPES or body[:64].lstrip().lower().startswith(HTML_OPENINGS):
                yield body, record.http_charset


def _finished_crawl(folder: Path) -> Crawl | None:
    """The crawl in `folder` if its marker says it is complete and of this layout; else clear
    the folder (an interrupted or older build) and return None."""
    marker = folder / MARKER
    if marker.exists():
        data = json.loads(marker.read_text())
        if set(data) == {field.name for field in fields(Crawl)}:
            return Crawl(**{key: tuple(v) if isinstance(v, list) else v for key, v in data.items()})
    if folder.exists():
        shutil.rmtree(folder)
    return None


def _page_bytes(path: Path) -> bytes:
    """A saved page's bytes, ungzipped if it is stored gzipped."""
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def _response(generator, url: str, body: bytes) -> bytes:
    """A WARC response record serving `body` at `url` as text/html, without a charset."""
    http = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    headers = [
        ("WARC-Type", "response"),
        ("WARC-Target-URI", url),
        ("WARC-Date", "2024-03-17T00:00:00Z"),
        ("WARC-Record-ID", f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url)}>"),
        ("Content-Type", "application/http; msgtype=response"),
        ("Content-Length", str(len(http))),
    ]
    return generator.warc_record(headers, http)


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
