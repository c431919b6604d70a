"""Gopher's duplicate n-gram fractions on real pages: ours against datatrove's and Dolma's counting.

Reads the HTML pages of a folder (say, a documentation tree), extracts and normalizes their text as
the clean stage does, and computes the duplicate 5-gram character fraction three ways on the same
words (lowercased, punctuation removed):
- ours (Rae et al. 2021, as RedPajama-V2 reads it): the characters of every word inside any
  occurrence of a repeated n-gram, each word once, over the characters of all words;
- datatrove's GopherRepetitionFilter: the characters of the repeats after the first occurrence,
  skipping n words after each, over the length of the whole text;
- Dolma's gopher tagger: the characters of all occurrences of repeated n-grams, overlaps counted
  again, over the characters of all n-gram occurrences.
It prints how many pages each removes at the paper's threshold (0.15), the median ratio of ours to
the others, and the pages only ours removes with their most repeated 5-grams, so one can judge
whether they are repetitive.

    python benchmarks/ngram_repetition.py --pages DIR [--sample 1500] [--examples 10]
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

from corpusmill.pipeline.extract import ExtractConfig, html_to_text
from corpusmill.pipeline.filters import GopherRepetition, GopherRepetitionConfig
from corpusmill.pipeline.normalize import normalize_text
from corpusmill.pipeline.words import split_words

N = 5
THRESHOLD = GopherRepetitionConfig().dup_5gram_char_frac
# Pages with less main text than this are mostly navigation; the quality rules remove them anyway.
MIN_CHARS = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=Path, required=True, help="a folder of saved HTML pages")
    parser.add_argument("--sample", type=int, default=1500, help="pages to sample (seeded)")
    parser.add_argument("--examples", type=int, default=10, help="pages only ours removes, shown")
    args = parser.parse_args()

    names, texts = _texts(args.pages, args.sample)
    words = split_words(pa.array(texts, pa.large_string()))
    _, dup = GopherRepetition(GopherRepetitionConfig())._ngram_fractions(words)
    ours = dup[N]
    lowered = [[word.lower() for word in row] for row in words.to_pylist()]
    datatrove = np.array(
        [_datatrove(row, len(text)) for row, text in zip(lowered, texts, strict=True)]
    )
    dolma = np.array([_dolma(row) for row in lowered])

    print(f"{len(texts)} pages of at least {MIN_CHARS} characters, duplicate {N}-gram fraction:")
    print(f"{'counting':<12} {'removed':>8} {'median ours / it':>17}")
    for name, values in (("ours", ours), ("datatrove", datatrove), ("dolma", dolma)):
        ratios = [a / b for a, b in zip(ours, values, strict=True) if b > 0]
        median = statistics.median(ratios) if ratios else float("nan")
        print(f"{name:<12} {int((values > THRESHOLD).sum()):>8} {median:>17.2f}")

    only_ours = [i for i in np.argsort(ours) if ours[i] > THRESHOLD >= datatrove[i]]
    print(f"\n{len(only_ours)} pages only ours removes, lowest fraction first:")
    for i in only_ours[: args.examples]:
        row = lowered[i]
        grams = Counter(tuple(row[k : k + N]) for k in range(len(row) - N + 1))
        print(f"{names[i]}: ours {ours[i]:.3f}, datatrove {datatrove[i]:.3f}, {len(row)} words")
        for gram, count in grams.most_common(3):
            print(f"    {count}x {' '.join(gram)}")


def _texts(folder: Path, sample: int) -> tuple[list[str], list[str]]:
    """The relative paths and normalized main texts of a seeded sample of the folder's pages."""
    paths = sorted(folder.rglob("*.htm*"))
    paths = random.Random(0).sample(paths, min(sample, len(paths)))
    names, texts = [], []
    for path in paths:
        text = html_to_text(path.read_bytes(), None, ExtractConfig()).text
        if len(text) >= MIN_CHARS:
            names.append(str(path.relative_to(folder)))
            texts.append(text)
    table = normalize_text(pa.table({"text": pa.array(texts, pa.large_string())}))
    return names, table.column("text").to_pylist()


def _datatrove(words: list[str], text_chars: int) -> float:
    """datatrove's counting: repeats after the first occurrence, n words skipped after each."""
    seen, repeated, i = set(), 0, 0
    while i <= len(words) - N:
        gram = tuple(words[i : i + N])
        if gram in seen:
            repeated += sum(map(len, gram))
            i += N
        else:
            seen.add(gram)
            i += 1
    return repeated / max(text_chars, 1)


def _dolma(words: list[str]) -> float:
    """Dolma's counting: characters of every occurrence of a repeated n-gram over those of all."""
    counts = Counter(tuple(words[k : k + N]) for k in range(len(words) - N + 1))
    chars = {gram: sum(map(len, gram)) * count for gram, count in counts.items()}
    repeated = sum(c for gram, c in chars.items() if counts[gram] > 1)
    return repeated / max(sum(chars.values()), 1)


if __name__ == "__main__":
    main()
