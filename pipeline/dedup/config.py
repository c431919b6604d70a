"""The dedup stage's settings, with the measurements behind their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from corpusmill.core.checks import FRACTION, NON_NEGATIVE, POSITIVE, Checked, between, one_of


@dataclass(frozen=True)
class DedupConfig(Checked):
    """Exact and MinHash-LSH near-duplicate removal (pipeline/dedup/stage.py).

    With the defaults (3-word shingles, 32 bands of 3 rows, verification at 0.4), a pair of
    documents with shingle Jaccard similarity J becomes a candidate with probability
    1 - (1 - J^3)^32:  J=0.2: 0.23, 0.3: 0.58, 0.4: 0.88, 0.5: 0.986, 0.6: 0.999, 0.7+: ~1;
    candidates below 0.4 are then dropped by their true Jaccard similarity. A word edit rate e
    leaves J ~ (1-e)^3 / (2 - (1-e)^3) with 3-word shingles: 0.75 at 5 %, 0.57 at 10 %, 0.34 at
    20 %, so pages with up to about 15 % of their words edited are removed. Measured by
    benchmarks/dedup.py (copies on other sites' templates, 4,450 pages), recall per edit rate:

        setting                       1 %   3 %   5 %  10 %  20 %  precision
        5-grams, 14x8 (datatrove)    0.90  0.46  0.13  0.00  0.00  1.000
        5-grams, 20x3, verified 0.3  1.00  0.98  0.96  0.72  0.00  1.000
        3-grams, 32x3, unverified    0.96  0.93  0.97  0.95  0.73  0.900
        3-grams, 32x3, verified 0.4  1.00  1.00  0.99  0.99  0.01  1.000  (the defaults)
    """

    enabled: bool = field(default=True, metadata={"help": "run the dedup stage"})
    near: bool = field(
        default=True, metadata={"help": "also remove near duplicates (MinHash-LSH), not only exact"}
    )
    exact_url: bool = field(
        default=False,
        metadata={
            "help": "also remove, as exact duplicates, later pages with an earlier page's URL"
        },
    )
    shingle_size: int = field(
        default=3,
        metadata={
            "help": "words per shingle (characters in Chinese, Japanese, Thai...); 3 finds 99 % "
            "of copies with 10 % of their words edited, 5 finds 72 % (benchmarks/dedup.py)",
            "checks": (POSITIVE,),
        },
    )
    bands: int = field(
        default=32,
        metadata={
            "help": "LSH bands; 32 x 3 rows make pairs of Jaccard 0.5 candidates 98.6 %",
            "checks": (between(1, 60_000),),
        },
    )
    rows: int = field(
        default=3,
        metadata={
            "help": "MinHash values per band; bands x rows permutations in all",
            "checks": (POSITIVE,),
        },
    )
    verify_threshold: float = field(
        default=0.4,
        metadata={
            "help": "keep candidate pairs whose true shingle Jaccard similarity reaches this "
            "(0.4: about 15 % of words edited); 0 keeps every candidate without reading the "
            "texts again, which dropped precision to 0.90 in benchmarks/dedup.py",
            "checks": (FRACTION,),
        },
    )
    keeper: str = field(
        default="first",
        metadata={
            "help": 'which document of duplicates is kept: "first" in input order, the '
            '"longest" text, or the "quality" one, of the lowest perplexity under the '
            "reference model (filters.perplexity); ties: the first",
            "checks": (one_of("first", "longest", "quality"),),
        },
    )
    kept_twins: bool = field(
        default=True,
        metadata={
            "help": "remove a document only for a kept document it was verified alike; off: "
            "each connected component of duplicates keeps one document, even for members "
            "reached only through a chain of others"
        },
    )
    seed: int = field(
        default=0, metadata={"help": "seed of the MinHash permutations", "checks": (NON_NEGATIVE,)}
    )
    bucket_rows: int = field(
        default=4_000_000,
        metadata={
            "help": "band-key rows per shuffle partition (a bucket of the candidates step, a "
            "partition of pairs of the edges step)",
            "checks": (POSITIVE,),
        },
    )
    pair_rows: int = field(
        default=500_000,
        metadata={
            "help": "most band-key rows the candidates step pairs at once (~165 bytes each); a "
            "larger bucket is paired in chunks of this many, merged from every part",
            "checks": (POSITIVE,),
        },
    )
    local_max_edges: int = field(
        default=10_000_000,
        metadata={
            "help": "find connected components on one worker up to this many edges (~120 bytes "
            "each); above, in distributed large-star/small-star rounds",
            "checks": (NON_NEGATIVE,),
        },
    )
    partition_edges: int = field(
        default=5_000_000,
        metadata={
            "help": "edges per partition of the distributed components (a task holds ~100 "
            "bytes per edge); a round runs 2 tasks per partition",
            "checks": (POSITIVE,),
        },
    )
