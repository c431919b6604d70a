"""The report's files: report.json (every number), report.md (tables) and report.html (tables and
the charts as embedded PNG); the charts are also written as PNG files for the Markdown."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    tables = tables_of(report)
    write_text(paths[1], _markdown(tables, charts))
    write_text(paths[2], _html(tables, charts))
    for name, png in charts.items():
        with atomic_path(folder / CHARTS[name]) as temporary:
            temporary.write_bytes(png)
        paths.append(folder / CHARTS[name])
    return paths


def tables_of(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of each section's table."""
    sample = report["sample"]
    tables = [
        (
            "Sample",
            ["part", "documents", "UTF-8 bytes"],
            [[part, str(v["docs"]), str(v["bytes"])] for part, v in sample.items()],
        ),
        (
            "Bits per byte by method (held-out part)",
            ["method", "bits/byte", "ratio", "note"],
            method_rows(report),
        ),
    ]
    tok = report["tokenizer"]
    tables.append(
        (
            "Tokenizer",
            ["measure", "value"],
            [
                ["vocabulary", str(tok["vocab_size"])],
                ["tokens (held-out)", str(tok["tokens"])],
                ["bytes per token", f"{tok['bytes_per_token']:.3f}"],
                ["characters per token", f"{tok['chars_per_token']:.3f}"],
                ["vocabulary seen, held-out", f"{tok['vocab_share_held_out']:.1%}"],
                ["vocabulary seen, whole sample", f"{tok['vocab_share_sample']:.1%}"],
            ],
        )
    )
    tables.append(
        (
            "Top tokens (held-out)",
            ["id", "token", "count", "share"],
            [
                [str(t["id"]), repr(t["text"]), str(t["count"]), f"{t['share']:.2%}"]
                for t in tok["top_tokens"]
            ],
        )
    )
    coded = [
        [
            name,
            f"{m['cross_entropy']['bits_per_byte']:.4f}",
            f"{m['coded']['bits_per_byte']:.4f}",
            f"{m['coded_over_cross_entropy']:.5f}",
            f"{m['identical_documents']}/{m['decoded_documents']} documents",
        ]
        for name, m in report["models"].items()
        if "coded" in m
    ]
    tables.append(
        (
            "Arithmetic coding by prediction",
            ["model", "cross-entropy bits/byte", "coded bits/byte", "coded / bound", "round trip"],
            coded,
        )
    )
    stages = report.get("stages", {})
    if "stages" in stages:
        names = list(next(iter(stages["stages"].values()))["compressed"])
        tables.append(
            (
                f"Raw vs clean vs deduplicated ({len(stages['files'])} of "
                f"{stages['input_files']} input files, one stream each)",
                ["stage", "documents", "MB", *(f"{name} bits/byte" for name in names)],
                [
                    [stage, str(v["docs"]), f"{v['bytes'] / 1e6:.2f}"]
                    + [f"{v['compressed'][name] * 8 / v['bytes']:.4f}" for name in names]
                    for stage, v in stages["stages"].items()
                ],
            )
        )
    return tables


def method_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row per compressor and model: bits per byte, ratio and how it was measured."""
    rows = []
    for name, ways in report["compressors"].items():
        for way, figure in ways.items():
            note = "each document alone" if way == "documents" else "documents as one stream"
            rows.append([name, f"{figure['bits_per_byte']:.4f}", f"{figure['ratio']:.3f}", note])
    for name, model in report["models"].items():
        figure = model.get("coded", model)
        note = "arithmetic-coded" if "coded" in model else "order-0 bound, no model cost"
        rows.append([name, f"{figure['bits_per_byte']:.4f}", f"{figure['ratio']:.3f}", note])
    return rows


def _figures(report: dict[str, Any]) -> dict[str, Figure]:
    """The bits-per-byte bar chart and, when a curve is given, the training curve. matplotlib is
    imported here, not with the module: it takes 0.3 s, which every other command, and every Dask
    worker `corpusmill run` starts, would pay too (workers import the command's modules)."""
    from matplotlib.figure import Figure

    rows = method_rows(report)
    figure = Figure(figsize=(8, 0.35 * len(rows) + 1.2))
    axes = figure.subplots()
    labels = [f"{name} ({note})" for name, _, _, note in rows]
    axes.barh(labels[::-1], [float(row[1]) for row in rows][::-1], color="#4c72b0")
    axes.set_xlabel("bits per UTF-8 byte (lower is better)")
    figure.tight_layout()
    figures = {"bits_per_byte": figure}
    if curve := report.get("training_curve"):
        figure = Figure(figsize=(7, 4))
        axes = figure.subplots()
        axes.plot([step for step, _ in curve], [bpb for _, bpb in curve], label="trained model")
        zstd = report["compressors"]["zstd -19"]["stream"]["bits_per_byte"]
        axes.axhline(zstd, color="#c44e52", linestyle="--", label="zstd -19 (stream)")
        axes.set_xlabel("training step")
        axes.set_ylabel("bits per byte")
        axes.legend()
        figure.tight_layout()
        figures["training_curve"] = figure
    return figures


def _png(figure: Figure) -> bytes:
    """A figure as PNG bytes (no timestamp in the file, so equal reports give equal bytes)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


def _markdown(tables: list, charts: dict[str, bytes]) -> str:
    """Tables as Markdown, the charts linked as PNG files."""
    lines = ["# Compression report", ""]
    for title, header, rows in tables:
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        lines.append("")
    lines += [f"![{name}]({CHARTS[name]})" for name in charts]
    return "\n".join(lines) + "\n"


def _html(tables: list, charts: dict[str, bytes]) -> str:
    """One self-contained HTML page: the tables, then the charts embedded as PNG."""
    body = []
    for title, header, rows in tables:
        cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body.append(f"<h2>{html.escape(title)}</h2><table><tr>{cells}</tr>")
        body += [
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
            for row in rows
        ]
        body.append("</table>")
    body += [
        f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for name, png in charts.items()
    ]
    style = "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Compression report</title>"
        f"<style>{style}</style></head><body><h1>Compression report</h1>"
        + "\n".join(body)
        + "</body></html>\n"
    )
