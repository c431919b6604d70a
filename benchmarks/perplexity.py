"""The perplexity filter's cost: the clean stage with and without it, and its scoring alone.

The clean stage runs on the generated crawl of `benchmarks/crawl.py` on a local Dask cluster of
`--workers` processes, without the perplexity filter and with it (the reference: the topics of
Python's own documentation, `pydoc_data.topics`, 0.46 MB; the model trained before the stage, as
`corpusmill run` does), alternately, best of `--repeat`; its seconds are the stage's own. Then, in
this process, on the documents that run kept, the family's scoring of the first
`score_bytes` of each document and of whole documents, in MB of text per CPU second (the
process's, so that other work on the machine counts less).

On a 2-core machine shared with other work (load 18 to 20), 2 workers, the generated crawl of
55.6 MB of HTML (600 documents, 8.2 MB of text), best of 3: the clean stage 6.53 s without the
filter and 9.65 s with it, 1.48x the time; scoring alone 2.0 MB of text per CPU second (the first
8,192 bytes of each document, 3.9 of 7.5 MB) and 2.5 MB/s on whole documents.

    python benchmarks/perplexity.py [--html-mb 50] [--workers 2] [--repeat 2] [--root out/bench]
"""

from __future__ import annotations

import argparse
import logging
import pydoc_data.topics
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from crawl import DEFAULT_ROOT, crawl_for

from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.clean import run_clean
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.readers import discover_inputs
from corpusmill.pipeline.reference import bits_per_byte, load_model, prepare_reference_model


def main() -> None:
    """Clean the crawl with and without the filter, then time its scoring alone; print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html-mb", type=int, default=50, help="least MB of HTML in the crawl")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, the best kept")
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help="cache folder of benchmark crawls"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    crawl = crawl_for(args.html_mb, None, args.root)
    work = Path(tempfile.mkdtemp(prefix="perplexity-", dir=args.root))
    try:
        reference = work / "python-docs.txt"
        topics = pydoc_data.topics.topics
        reference.write_text("\n\n".join(topics[name] for name in sorted(topics)))
        seconds: dict[str, list[float]] = {"without": [], "with": []}
        with dask_client("", args.workers) as client:
            for run in range(args.repeat):
                for name in seconds:
                    out = work / f"{name}-{run}"
                    config = load_config(
                        overrides={
                            "inputs": crawl.warcs,
                            "out": str(out),
                            "workers": args.workers,
                            **(
                                {"filters.perplexity.reference": (str(reference),)}
                                if name == "with"
                                else {}
                            ),
                        }
                    )
                    layout = RunLayout(out)
                    out.mkdir()
                    if name == "with":
                        perplexity = config.filters.perplexity
                        prepare_reference_model(perplexity, config.read, layout.reference_model, {})
                    stats = run_clean(config, client, discover_inputs(config.inputs, config.read))
                    seconds[name].append(stats["seconds"])
        docs, text_mb = stats["read"]["docs"], stats["read"]["bytes"] / 1e6
        best = {name: min(values) for name, values in seconds.items()}
        print(
            f"crawl {crawl.folder}: {crawl.html_bytes / 1e6:.1f} MB of HTML, {docs} documents, "
            f"{args.workers} workers, best of {args.repeat}\n"
            f"| clean stage | seconds | docs/s | MB of HTML/s |\n|---|---|---|---|"
        )
        for name, value in best.items():
            print(
                f"| {name} the perplexity filter | {value:.2f} | {docs / value:,.0f} | "
                f"{crawl.html_bytes / 1e6 / value:.1f} |"
            )
        ratio = best["with"] / best["without"]
        print(f"with / without: {ratio:.2f}x the time ({text_mb:.1f} MB of text read)")
        print_scoring(layout, config.filters.perplexity.score_bytes)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_scoring(layout: RunLayout, score_bytes: int) -> None:
    """The family's scoring alone, in this process, on the documents the run kept."""
    model = load_model(layout.reference_model)
    texts = pa.concat_tables(
        pq.read_table(layout.clean_part(index), columns=["text"]) for index in layout.clean_parts()
    )["text"].combine_chunks()
    total = pc.sum(pc.binary_length(texts)).as_py() / 1e6
    for label, limit in ((f"first {score_bytes} bytes", score_bytes), ("whole documents", 1 << 40)):
        scored = pc.sum(pc.min_element_wise(pc.binary_length(texts), limit)).as_py() / 1e6
        started = time.process_time()
        bits_per_byte(model, texts, limit)
        took = time.process_time() - started
        print(
            f"scoring {len(texts)} documents ({total:.1f} MB), {label}: {scored:.1f} MB scored in "
            f"{took:.2f} CPU s, {scored / took:.2f} MB/s scored, {len(texts) / took:,.0f} docs/s"
        )


if __name__ == "__main__":
    main()
