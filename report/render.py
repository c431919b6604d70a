"""The report's files: report.json (every number), report.md (what each section shows, and its
table) and report.html (the same, and the charts as embedded PNG); the charts are also written as
PNG files for the Markdown."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from corpusmill.core.atomic import atomic_path, write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CHARTS = {"bits_per_byte": "report-bits-per-byte.png", "training_curve": "report-training.png"}


def write_report(report: dict[str, Any], folder: Path) -> list[Path]:
    """Write the report's files into `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    charts = {name: _png(figure) for name, figure in _figures(report).items()}
    paths = [folder / "report.json", folder / "report.md", folder / "report.html"]
    write_text(paths[0], json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    sections = sections_of(report)
    write_text(paths[1], _markdown(sections, charts))
    write_text(paths[2], _html(sections, charts))
    for name, png in charts.items():
        with atomic_path(folder / CHARTS[name]) as temporary:
            temporary.write_bytes(png)
        paths.append(folder / CHARTS[name])
    return paths


def sections_of(report: dict[str, Any]) -> list[Section]:
    """Each section of the report: its title, a few sentences saying what it shows, its table."""
    held = report["sample"]["held_out"]
    sections = [
        Section(
            "What is measured",
            f"Every figure is in bits per byte: the bits a method spends on the same "
            f"{held['docs']} held-out documents ({held['bytes']:,} bytes of UTF-8 text) divided "
            "by those bytes; 8 means no compression, lower is better. The documents are "
            + _held_out_rule(held)
            + ": the same documents `corpusmill train` evaluates its model on. Models and the zstd "
            "dictionary are fit on other documents, listed as the training part.",
            ["part", "documents", "UTF-8 bytes"],
            [
                [_PARTS[part], str(v["docs"]), f"{v['bytes']:,}"]
                for part, v in report["sample"].items()
            ],
        ),
        Section(
            "Bits per byte by method",
            "gzip and zstd are general-purpose compressors; 'each document alone' compresses "
            "every document by itself, as a store of records would, 'one stream' all of them "
            "joined, so repeats across documents help. 'zstd -19 + dictionary' first learns a "
            "dictionary from other documents. The unigram entropy is what a coder knowing only "
            "how often each token occurs needs. The n-gram models and the trained model predict "
            "each token from those before it: a model giving the next token probability p can "
            "code it in -log2 p bits, so a model's cross-entropy is the length of the code it "
            "yields. Prediction is compression.",
            ["method", "bits/byte", "ratio", "how"],
            method_rows(report),
        ),
    ]
    coded = [
        [
            name,
            f"{m['cross_entropy']['bits_per_byte']:.4f}",
            f"{m['coded']['bits_per_byte']:.4f}",
            f"{m['coded_over_cross_entropy']:.5f}",
            f"{m['identical_documents']}/{m['decoded_documents']} documents identical",
        ]
        for name, m in report["models"].items()
        if "coded" in m
    ]
    sections.append(
        Section(
            "Arithmetic coding: prediction turned into a file and back",
            "That the cross-entropy is a code length is not left on paper: an arithmetic coder "
            "turns each model's predictions into an actual stream of bits, whose length is "
            "'coded bits/byte', within a hair of the cross-entropy ('coded / bound'); the same "
            "model then decodes the stream, predicting token after token, back into text, "
            "compared byte for byte with the held-out documents ('round trip').",
            ["model", "cross-entropy bits/byte", "coded bits/byte", "coded / bound", "round trip"],
            coded,
        )
    )
    if dl := report.get("description_length"):
        sections.append(_description_section(dl))
    if curve := report.get("training_curve"):
        same = curve["same_held_out"]
        sections.append(
            Section(
                "Coded size during training",
                "The held-out text's coded size at each evaluation of training: its "
                "cross-entropy, which the coder matches within 0.01 %, against the tokens the "
                "model had seen. "
                + (
                    "Training evaluated the same held-out documents."
                    if same
                    else "Training evaluated another held-out set (another --held-out-bytes): "
                    "its points are not comparable with the table above."
                ),
                ["step", "tokens seen", "bits/byte", "coded bytes"],
                [
                    [
                        str(p["step"]),
                        f"{p['tokens_seen']:,}" if p["tokens_seen"] is not None else "",
                        f"{p['bits_per_byte']:.4f}",
                        f"{p['coded_bytes']:,}",
                    ]
                    for p in curve["points"]
                ],
            )
        )
    sections.append(_tokenizer_section(report["tokenizer"]))
    return sections + _stages_sections(report.get("stages", {}))


_PARTS = {"held_out": "held out, measured", "train": "training part, fit on"}


class Section(NamedTuple):
    """One section of the report: a title, what it shows in plain words, and a table."""

    title: str
    text: str
    header: list[str]
    rows: list[list[str]]


def method_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row per compressor and model, best first: bits per byte, ratio and how measured."""
    return [row[1:] for row in sorted(_methods(report), key=lambda row: row[2])]


def _methods(report: dict[str, Any]) -> list[list[Any]]:
    """(kind, method, bits/byte, ratio, how) of every compressor and model, bits as floats."""
    rows = []
    for name, ways in report["compressors"].items():
        for way, figure in ways.items():
            how = "each document alone" if way == "documents" else "one stream"
            rows.append(["compressor", name, figure["bits_per_byte"], figure["ratio"], how])
    for name, model in report["models"].items():
        figure = model.get("coded", model)
        how = "arithmetic-coded" if "coded" in model else "order-0 bound, no model cost"
        kind = (
            "bound" if "coded" not in model else "trained" if name == "trained model" else "ngram"
        )
        rows.append([kind, name, figure["bits_per_byte"], figure["ratio"], how])
    return [[kind, name, f"{bpb:.4f}", f"{ratio:.3f}", how] for kind, name, bpb, ratio, how in rows]


def _description_section(dl: dict[str, Any]) -> Section:
    """The trained model as two files: its parameters and the coded text."""
    raw = dl["raw_bytes"]
    rows = [
        ["model parameters (checkpoint file)", f"{dl['model_bytes']:,}", ""],
        ["held-out text coded by the model", f"{dl['coded_bytes']:,}", ""],
        [
            "model + coded text",
            f"{dl['total_bytes']:,}",
            f"{dl['adjusted_rate']:.4f}",
        ],
        ["zstd -19, one stream", f"{dl['zstd -19 bytes']:,}", f"{dl['zstd_rate']:.4f}"],
    ]
    if "zstd + dictionary total_bytes" in dl:
        total = dl["zstd + dictionary total_bytes"]
        rows.append(["zstd -19 + its dictionary", f"{total:,}", f"{total / raw:.4f}"])
    even = dl["break_even_bytes"]
    verdict = (
        f"it pays for its own size from {even:,} bytes of such text on "
        f"({even / raw:,.0f}× the held-out text)"
        if even is not None
        else "it codes no better than zstd -19, so it never pays for its own size"
    )
    return Section(
        "An LLM is two files: the model and the code",
        "To decompress, the receiver needs the model as well as the coded text, so the model's "
        "parameters count: the total description length is the checkpoint's bytes plus the "
        "coded bytes, and divided by the raw bytes it is the adjusted compression rate of "
        "Delétang et al. (2023), 'Language Modeling Is Compression' (lower is better). Against "
        f"zstd -19, {verdict}.",
        ["what", "bytes", "over raw bytes"],
        rows,
    )


def _tokenizer_section(tok: dict[str, Any]) -> Section:
    """How the tokenizer cuts the held-out text, and its most frequent tokens."""
    top = ", ".join(f"{t['text']!r} {t['share']:.1%}" for t in tok["top_tokens"][:10])
    return Section(
        "Tokenizer",
        "Models predict tokens, and every figure above is per byte, so tokenizers of any size "
        f"compare. Most frequent held-out tokens: {top}.",
        ["measure", "value"],
        [
            ["vocabulary", str(tok["vocab_size"])],
            ["tokens (held-out)", f"{tok['tokens']:,}"],
            ["bytes per token", f"{tok['bytes_per_token']:.3f}"],
            ["characters per token", f"{tok['chars_per_token']:.3f}"],
            ["vocabulary seen, held-out", f"{tok['vocab_share_held_out']:.1%}"],
            ["vocabulary seen, whole sample", f"{tok['vocab_share_sample']:.1%}"],
        ],
    )


def _stages_sections(stages: dict[str, Any]) -> list[Section]:
    """Raw vs clean vs deduplicated text of the whole run: totals, per language, per input file."""
    if "stages" not in stages:
        return []
    by_stage = stages["stages"]
    names = [m for m in next(iter(by_stage.values()))["total"] if m not in ("docs", "bytes")]

    sections = [
        Section(
            f"Raw vs clean vs deduplicated: the whole run ({stages['input_files']} input files)",
            "Every document of the run, compressed on its own, at three stages: the input "
            "files' text as read (extracted, before filters), after cleaning, and after "
            "deduplication. Cleaning removes boilerplate, spam and repeated lines, which "
            "compress well, so the bits per byte rise; deduplication removes whole documents "
            "that are copies, which a compressor that sees them together stores almost for free "
            "(the last column compresses each input split's or clean part's documents as one "
            "stream, where the copies within it show, fed to a streaming compressor a batch at a "
            "time; zstd's streaming frame is a few bytes larger than one-shot compression): "
            "compression of the raw crawl overstates how much the corpus holds. When the lines "
            "stage ran, the deduplicated documents are counted without the lines it removed. "
            "Figures are bits per byte. Unlike the "
            "sections above, these figures cover the whole run; the models are measured on the "
            "held-out documents only. Each clean document's own figures, and whether dedup kept "
            f"it, are in {stages['documents']} (Parquet, one file per clean part).",
            ["stage", "documents", "MB"]
            + [f"{name}, each document alone" for name in names]
            + ["zstd -19, each part as one stream"],
            [
                [stage, f"{v['total']['docs']:,}", f"{v['total']['bytes'] / 1e6:.2f}"]
                + [_bits(v["total"], name) for name in names]
                + [_bits(v["stream"] | {"bytes": v["total"]["bytes"]}, "zstd -19")]
                for stage, v in by_stage.items()
            ],
        )
    ]
    later = [stage for stage in by_stage if stage != "raw"]
    clean = by_stage["clean"]["by_language"]
    langs = sorted(
        {lang for stage in later for lang in by_stage[stage]["by_language"]},
        key=lambda lang: -clean.get(lang, {"bytes": 0})["bytes"],
    )
    sections.append(
        Section(
            "Per language (zstd -19, each document alone)",
            "The languages the clean stage identified: how much of each the run kept, and how "
            "well it compresses. The rows add up to the totals above.",
            ["language"]
            + [f"{stage} {what}" for stage in later for what in ("documents", "MB", "bits/byte")],
            _group_rows(by_stage, later, "by_language", langs, with_mb=True),
        )
    )
    raw = by_stage["raw"]["by_source"]
    sources = sorted(raw, key=lambda source: -raw[source]["bytes"])
    shown = sources[:_SOURCES_SHOWN]
    more = len(sources) > len(shown)
    sections.append(
        Section(
            "Per input file (zstd -19, each document alone)",
            "What each input file gave at each stage"
            + (
                f"; the {len(shown)} largest of {len(sources)}, report.json has all."
                if more
                else "."
            ),
            ["input file"]
            + [f"{stage} {what}" for stage in by_stage for what in ("documents", "bits/byte")],
            _group_rows(by_stage, list(by_stage), "by_source", shown, with_mb=False),
        )
    )
    return sections


def _group_rows(
    by_stage: dict[str, Any], stages: list[str], key: str, names: list[str], with_mb: bool
) -> list[list[str]]:
    """Per language or input file (`key`), its documents, MB and zstd -19 bits per byte at each
    stage (zeros where a stage has none of it)."""
    rows = []
    for name in names:
        row = [name]
        for stage in stages:
            counts = by_stage[stage][key].get(name, {"docs": 0, "bytes": 0, "zstd -19": 0})
            row.append(f"{counts['docs']:,}")
            if with_mb:
                row.append(f"{counts['bytes'] / 1e6:.3f}")
            row.append(_bits(counts, "zstd -19"))
        rows.append(row)
    return rows


def _bits(counts: dict[str, int], name: str) -> str:
    """Bits per byte of method `name` in a group's counts (blank for a group of no bytes)."""
    return f"{counts[name] * 8 / counts['bytes']:.4f}" if counts["bytes"] else ""


# Input files listed in the Markdown and HTML; report.json lists every one.
_SOURCES_SHOWN = 20

# Compressors, the order-0 bound, n-gram models and the trained model: one colour per kind.
_COLOURS = {"compressor": "#4c72b0", "bound": "#8c8c8c", "ngram": "#dd8452", "trained": "#55a868"}
_KINDS = {
    "compressor": "general-purpose compressor",
    "bound": "order-0 entropy bound",
    "ngram": "n-gram model, arithmetic-coded",
    "trained": "trained model, arithmetic-coded",
}


def _figures(report: dict[str, Any]) -> dict[str, Figure]:
    """The bits-per-byte bar chart and, when a training history is given, the coded size during
    training. matplotlib is imported here, not with the module: it takes 0.3 s, which every
    other command, and every Dask worker `corpusmill run` starts, would pay too (workers import
    the command's modules)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = sorted(_methods(report), key=lambda row: float(row[2]), reverse=True)
    figure = Figure(figsize=(9, 0.32 * len(rows) + 2.2))
    axes = figure.subplots()
    bars = axes.barh(
        [f"{name} ({how})" for _, name, _, _, how in rows],
        [float(row[2]) for row in rows],
        color=[_COLOURS[row[0]] for row in rows],
    )
    axes.bar_label(bars, fmt="%.2f", padding=3, fontsize=8)
    axes.set_xlim(0, max(float(row[2]) for row in rows) * 1.12)
    axes.set_xlabel("bits per byte of the held-out documents (lower is better)")
    kinds = dict.fromkeys(row[0] for row in rows)
    figure.legend(
        handles=[Patch(color=_COLOURS[kind], label=_KINDS[kind]) for kind in kinds],
        loc="lower center",
        ncol=2,
        fontsize=8,
        frameon=False,
    )
    figure.tight_layout(rect=(0, 0.6 / figure.get_figheight(), 1, 1))
    figures = {"bits_per_byte": figure}
    if curve := report.get("training_curve"):
        figures["training_curve"] = _curve_figure(Figure, curve, report)
    return figures


def _curve_figure(figure_type: type, curve: dict[str, Any], report: dict[str, Any]) -> Figure:
    """Coded size of the held-out text against tokens seen, beside zstd -19's (the model's own
    bytes, far larger on a small held-out set, are in the title rather than drawn)."""
    points = curve["points"]
    seen = [p["tokens_seen"] if p["tokens_seen"] is not None else p["step"] for p in points]
    figure = figure_type(figsize=(8, 4.5))
    axes = figure.subplots()
    coded = [p["coded_bytes"] / 1e3 for p in points]
    axes.plot(seen, coded, marker="o", color=_COLOURS["trained"], label="coded by the model")
    for x, y in zip(seen, coded, strict=True):
        axes.annotate(f"{y:.1f}", (x, y), textcoords="offset points", xytext=(0, 6), fontsize=7)
    zstd = report["compressors"]["zstd -19"]["stream"]["bytes"] / 1e3
    axes.axhline(zstd, color=_COLOURS["compressor"], linestyle="--", label="zstd -19 (one stream)")
    if dl := report.get("description_length"):
        axes.set_title(
            f"the model itself: {dl['model_bytes'] / 1e3:,.0f} kB ({dl['params']:,} parameters)",
            fontsize=9,
        )
    axes.set_xlabel("tokens seen in training" if points[0]["tokens_seen"] is not None else "step")
    axes.set_ylabel("held-out text coded, kB")
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _png(figure: Figure) -> bytes:
    """A figure as PNG bytes (no timestamp in the file, so equal reports give equal bytes)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _markdown(sections: list[Section], charts: dict[str, bytes]) -> str:
    """Sections as Markdown (text, then table), the charts linked as PNG files."""
    lines = ["# Compression report", ""]
    for title, text, header, rows in sections:
        lines += [f"## {title}", "", text, "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        lines.append("")
    lines += [f"![{name}]({CHARTS[name]})" for name in charts]
    return "\n".join(lines) + "\n"


def _html(sections: list[Section], charts: dict[str, bytes]) -> str:
    """One self-contained HTML page: the sections, then the charts embedded as PNG."""
    body = []
    for title, text, header, rows in sections:
        cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body.append(f"<h2>{html.escape(title)}</h2><p>{html.escape(text)}</p>")
        body.append(f"<table><tr>{cells}</tr>")
        body += [
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
            for row in rows
        ]
        body.append("</table>")
    body += [
        f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for name, png in charts.items()
    ]
    style = (
        "body{max-width:60em;font-family:sans-serif}p{line-height:1.4}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Compression report</title>"
        f"<style>{style}</style></head><body><h1>Compression report</h1>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def _held_out_rule(held: dict[str, Any]) -> str:
    """Which documents are held out: the run's validation split, or the first by id hash."""
    if held.get("validation_fraction"):
        return (
            "the run's validation split, those whose id's xxh3-64 hash lies below "
            f"{held['validation_fraction']} of the hash range"
        )
    return (
        "those first by the xxh3-64 hash of their id, up to "
        f"{held['held_out_bytes']:,} bytes (at most a tenth of the corpus)"
    )
