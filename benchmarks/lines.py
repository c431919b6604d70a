"""Line deduplication measured on pages: what the lines stage removes at several thresholds.

Runs clean and dedup once on the sample crawl (sample_data/: WARC pages, WET records with their
boilerplate lines, JSON lines) or, with `--pages DIR`, on the saved HTML pages under DIR made a
crawl by benchmarks/crawl.py (for instance a documentation site's HTML: the Rust book under
`~/.rustup/toolchains/*/share/doc/rust/html/book`), then the lines stage alone for each
`--max-docs`, and prints per threshold the frequent lines, the lines, bytes and documents removed
(bytes as a share of the documents dedup kept) and the stage's seconds, then the most repeated
lines at the first threshold.

    python benchmarks/lines.py [--pages DIR] [--max-docs 3 10 30] [--workers 2] [--top 10]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from crawl import build_page_crawl

from corpusmill.core.storage import remove
from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.dedup.lines import LinesConfig
from corpusmill.pipeline.lines import run_lines
from corpusmill.pipeline.run import run_pipeline

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
_COLUMNS = ("max_docs", "frequent lines", "lines removed", "bytes removed", "docs emptied", "s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=Path, help="saved HTML pages instead of the sample crawl")
    parser.add_argument("--max-docs", type=int, nargs="+", default=[3, 10, 30])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--top", type=int, default=10, help="most repeated lines shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        inputs = _inputs(args.pages, Path(scratch))
        out = Path(scratch) / "out"
        overrides = {"inputs": inputs, "out": str(out), "read.split_bytes": 1 << 20}
        with dask_client("", args.workers) as client:
            stats = run_pipeline(load_config(overrides=overrides), client=client)
            kept = stats["dedup"]["kept"]
            print(f"{args.pages or SAMPLE}: {kept['docs']} documents, {kept['bytes']:,} bytes kept")
            print(f"| {' | '.join(_COLUMNS)} |\n|{'---|' * len(_COLUMNS)}")
            layout = RunLayout(out)
            first = None
            for max_docs in args.max_docs:
                remove(layout.lines)
                started = time.perf_counter()
                lines = run_lines(layout, LinesConfig(enabled=True, max_docs=max_docs), client)
                seconds = time.perf_counter() - started
                first = first or lines
                removed = lines["removed"]
                share = removed["bytes"] / kept["bytes"]
                print(
                    f"| {max_docs} | {lines['frequent']:,} | {removed['lines']:,} | "
                    f"{removed['bytes']:,} ({share:.1%}) | {lines['emptied']['docs']} | "
                    f"{seconds:.1f} |"
                )
    print(f"\nmost repeated lines at max_docs {args.max_docs[0]}:")
    for top in first["top"][: args.top]:
        print(f"{top['docs']:6d}  {json.dumps(top['line'], ensure_ascii=False)[:100]}")


def _inputs(pages: Path | None, scratch: Path) -> tuple[str, ...]:
    """The sample crawl's files, or a crawl of one copy of the pages under `pages`."""
    if pages is None:
        return tuple(str(path) for path in sorted(SAMPLE.glob("*.*z*")))
    return build_page_crawl(pages, 0, scratch).warcs


if __name__ == "__main__":
    main()
