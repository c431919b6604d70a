"""The compression report: Kneser-Ney distributions, entropy, and a report on the sample crawl."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import zstandard

from corpusmill.loader.layout import RunLayout
from corpusmill.pipeline.cluster import dask_client
from corpusmill.pipeline.config import load_config
from corpusmill.pipeline.corpus import Corpus
from corpusmill.pipeline.ngram import KneserNey
from corpusmill.pipeline.run import run_pipeline
from corpusmill.report.build import break_even_bytes, build_report, training_curve
from corpusmill.report.config import ReportConfig
from corpusmill.report.entropy import bits_per_byte, entropy_bits
from corpusmill.report.predict import CheckpointModel
from corpusmill.report.render import method_rows, write_report
from corpusmill.report.sample import held_out_split
from corpusmill.tokenizer.config import TokenizerConfig
from corpusmill.tokenizer.encode import load_encoder
from corpusmill.tokenizer.train import save_tokenizer, train_tokenizer
from corpusmill.train.model import GPT, ModelConfig

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def test_entropy_of_a_known_distribution_in_bits_per_byte():
    # Counts 2, 1, 1: probabilities 1/2, 1/4, 1/4 cost 1 + 1 + 2 + 2 = 6 bits over 4 tokens.
    assert entropy_bits(np.array([2, 1, 1, 0])) == 6.0
    assert bits_per_byte(6.0, 3) == 2.0


def test_kneser_ney_matches_the_formula_by_hand():
    # Documents [1 2] and [1 3], EOS 0: bigrams 01 12 20 01 13 30. Unigram continuation counts:
    # 1 <- {0}, 2 <- {1}, 3 <- {1}, 0 <- {2, 3}: total 5, 4 types, so
    # p1(2) = (1 - .75) / 5 + .75 * 4 / 5 / 4 = 0.2 and p(2 | 1) = (1 - .75) / 2 + .75 * 2 / 2 * 0.2.
    model = KneserNey([np.array([1, 2]), np.array([1, 3])], vocab_size=4, eos_id=0, order=2)
    assert model.next_probs(np.array([[1]]))[0, 2] == pytest.approx(0.275, abs=1e-15)
    # After EOS: c(0 1) = 2 of 2, one type, so p(1 | 0) = (2 - .75) / 2 + .75 * 1 / 2 * 0.2.
    assert model.step_probs([])[1] == pytest.approx(0.7, abs=1e-15)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_kneser_ney_distributions_sum_to_one_and_cover_the_vocabulary(order):
    rng = np.random.default_rng(order)
    docs = [rng.integers(1, 40, size=rng.integers(1, 30)) for _ in range(50)]
    model = KneserNey(docs, vocab_size=40, eos_id=0, order=order)
    probs = model.next_probs(rng.integers(0, 40, size=(100, order - 1)))
    assert np.abs(probs.sum(axis=1) - 1).max() < 1e-12
    assert probs.min() > 0


def test_kneser_ney_gives_the_same_bits_one_step_at_a_time():
    rng = np.random.default_rng(7)
    docs = [rng.integers(1, 30, size=25) for _ in range(40)]
    model = KneserNey(docs, vocab_size=30, eos_id=0, order=3)
    tokens = np.append(docs[0], 0)
    batched = np.concatenate(model.document_probs(tokens))
    stepwise = np.stack([model.step_probs(tokens[:i].tolist()) for i in range(len(tokens))])
    assert np.array_equal(batched, stepwise)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> tuple[Path, Path]:
    """The sample crawl cleaned and deduplicated, and a small tokenizer trained on it (no shards)."""
    out = tmp_path_factory.mktemp("report") / "out"
    config = load_config(
        overrides={
            "inputs": (str(SAMPLE / "*.gz"), str(SAMPLE / "*.zst")),
            "out": str(out),
            "read.split_bytes": 256 << 10,
        }
    )
    with dask_client("", 2) as client:
        run_pipeline(config, client=client)
    tokenizer, _ = train_tokenizer(Corpus([str(out)]), TokenizerConfig(vocab_size=1024))
    save_tokenizer(tokenizer, out.parent / "tokenizer.json")
    return out, out.parent / "tokenizer.json"


@pytest.fixture(scope="module")
def report(sample_run) -> dict:
    out, tokenizer = sample_run
    config = ReportConfig(held_out_bytes=60_000)
    with dask_client("", 2) as client:
        return build_report(
            out, config, tokenizer, client=client, documents=out.parent / "documents"
        )


def test_report_has_every_section_with_sane_values(report):
    assert set(report) >= {"sample", "compressors", "tokenizer", "models", "stages"}
    assert report["sample"]["held_out"]["docs"] == len(report["sample"]["held_out"]["ids"])
    compressors = report["compressors"]
    assert set(compressors) == {"gzip -9", "zstd -3", "zstd -19", "zstd -19 + dictionary"}
    per_doc = {name: ways["documents"]["bits_per_byte"] for name, ways in compressors.items()}
    assert per_doc["zstd -19 + dictionary"] < per_doc["zstd -19"] < 8
    tokenizer = report["tokenizer"]
    assert 1 < tokenizer["bytes_per_token"] < 8
    assert tokenizer["chars_per_token"] <= tokenizer["bytes_per_token"]
    assert 0 < tokenizer["vocab_share_held_out"] <= tokenizer["vocab_share_sample"] <= 1
    models = report["models"]
    bpb = {name: m["cross_entropy"]["bits_per_byte"] for name, m in models.items() if "coded" in m}
    assert bpb["trigram Kneser-Ney"] < bpb["bigram Kneser-Ney"] < bpb["unigram Kneser-Ney"]


def test_arithmetic_coder_output_is_within_one_percent_and_decodes(report):
    for name, model in report["models"].items():
        if "coded" in model:
            assert 1 <= model["coded_over_cross_entropy"] < 1.01, name
            assert model["round_trip"], name
            assert model["identical_documents"] == report["sample"]["held_out"]["docs"], name


def test_whole_run_compression_sums_per_language_and_per_file_to_its_totals(report):
    stages = report["stages"]["stages"]
    assert list(stages) == ["raw", "clean", "deduplicated"]
    for stage in stages.values():
        for key in ("by_language", "by_source"):
            for measure, total in stage["total"].items():
                assert sum(group[measure] for group in stage[key].values()) == total, measure
    assert set(stages["raw"]["by_language"]) == {"unknown"}
    assert {"en", "de", "fr", "es", "ru", "zh"} <= set(stages["clean"]["by_language"])
    raw, clean, dedup = (stages[name]["total"]["docs"] for name in stages)
    assert raw > clean > dedup


def test_whole_run_figures_match_the_run_recompressed_document_by_document(sample_run, report):
    out, _ = sample_run
    stages = report["stages"]["stages"]
    zstd = zstandard.ZstdCompressor(level=19)
    layout = RunLayout(out)
    clean = pq.read_table(layout.clean, columns=["text"])["text"].to_pylist()
    kept = pq.read_table(out / "dataset", columns=["text"])["text"].to_pylist()
    for stage, texts in (("clean", clean), ("deduplicated", kept)):
        encoded = [text.encode() for text in texts]
        assert stages[stage]["total"]["docs"] == len(texts)
        assert stages[stage]["total"]["bytes"] == sum(map(len, encoded))
        assert stages[stage]["total"]["zstd -19"] == sum(len(zstd.compress(t)) for t in encoded)
    documents = pq.read_table(out.parent / "documents")
    assert documents.num_rows == len(clean)
    assert sum(documents["kept"].to_pylist()) == len(kept)
    ratio = documents["bytes"].to_numpy() / documents["zstd -19"].to_numpy()
    assert np.allclose(documents["zstd -19 ratio"].to_numpy(), ratio)


def test_a_trained_model_codes_the_whole_held_out_set_and_is_drawn_with_its_curve(
    sample_run, tmp_path
):
    out, tokenizer = sample_run
    config = ReportConfig(held_out_bytes=40_000, ngram_order=1)
    encoder = load_encoder(tokenizer)
    eos_id = encoder.token_id("<|endoftext|>")
    settings = ModelConfig(vocab_size=encoder.vocab_size, seq_len=16, n_layer=1, n_embd=16)
    gpt = GPT.init(settings, seed=3, dtype=np.float64)
    model = CheckpointModel(gpt, eos_id)
    held, _ = held_out_split(out, config.held_out_bytes, config.train_bytes)
    texts = held["text"].to_pylist()
    num_bytes = sum(len(text.encode()) for text in texts)
    checkpoint = {
        "bytes": 200_000,
        "params": gpt.num_params(),
        "held_out": {"ids": held["id"].to_pylist(), "docs": len(texts), "bytes": num_bytes},
        "history": [
            {"step": 0, "tokens_seen": 0, "eval_bpb": 6.0},
            {"step": 10, "tokens_seen": 160, "eval_bpb": 3.0},
        ],
    }
    result = build_report(out, config, tokenizer, model=model, checkpoint=checkpoint)
    trained = result["models"]["trained model"]
    assert trained["round_trip"]
    assert trained["decoded_documents"] == trained["identical_documents"] == len(texts) > 1
    # The same bits from the full forward of each window, without the cache, over the documents'
    # own UTF-8 bytes.
    bits = 0.0
    for doc in encoder.encode(texts):
        sequence = np.concatenate([[eos_id], doc, [eos_id]]).astype(np.int64)
        for start in range(0, len(sequence) - 1, settings.seq_len):
            window = sequence[start : start + settings.seq_len + 1]
            logp = gpt.log_probs(window[None, :-1])[0]
            bits -= logp[np.arange(len(window) - 1), window[1:]].sum() / np.log(2)
    assert trained["cross_entropy"]["bits_per_byte"] == pytest.approx(bits / num_bytes, abs=1e-4)
    assert trained["coded"]["bits_per_byte"] == pytest.approx(
        trained["coded_bytes"] * 8 / num_bytes, abs=1e-4
    )
    paths = write_report(result, tmp_path)
    assert {p.name for p in paths} >= {
        "report.json",
        "report.md",
        "report.html",
        "report-training.png",
    }
    curve = json.loads((tmp_path / "report.json").read_text())["training_curve"]
    assert curve["same_held_out"]
    assert [p["coded_bytes"] for p in curve["points"]] == [
        round(6.0 * num_bytes / 8),
        round(3.0 * num_bytes / 8),
    ]
    two_files = result["description_length"]
    assert two_files["total_bytes"] == 200_000 + trained["coded_bytes"]
    assert two_files["adjusted_rate"] == pytest.approx(two_files["total_bytes"] / num_bytes, 1e-3)
    page = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in page
    markdown = (tmp_path / "report.md").read_text()
    for said in (
        "a model&#x27;s cross-entropy is the length of the code it yields",
        "back into text, compared byte for byte with the held-out documents",
        "adjusted compression rate of Delétang et al. (2023)",
    ):
        assert said in page and html.unescape(said) in markdown


def test_break_even_size_is_where_the_model_and_its_code_fit_in_zstds_bytes():
    # A 1 MB model coding at 2.0 bits per byte against zstd at 2.5: 8 * 1e6 / 0.5 = 16 MB, where
    # 1e6 + 16e6 * 2.0 / 8 = 5e6 = 16e6 * 2.5 / 8.
    assert break_even_bytes(1_000_000, 2.0, 2.5) == 16_000_000
    assert 1_000_000 + 16_000_000 * 2.0 / 8 == 16_000_000 * 2.5 / 8
    assert break_even_bytes(1_000_000, 2.5, 2.5) is None
    assert break_even_bytes(1_000_000, 3.0, 2.5) is None


def test_a_curve_measured_on_other_held_out_documents_is_flagged():
    checkpoint = {
        "held_out": {"ids": ["a#0", "b#7"], "bytes": 800},
        "history": [{"step": 5, "tokens_seen": 80, "eval_bpb": 2.0}],
    }
    same = training_curve(checkpoint, {"ids": ["a#0", "b#7"]})
    assert same["same_held_out"] and same["points"][0]["coded_bytes"] == 200
    assert not training_curve(checkpoint, {"ids": ["a#0"]})["same_held_out"]


def test_methods_are_listed_best_first(report):
    bits = [float(row[1]) for row in method_rows(report)]
    assert bits == sorted(bits) and len(bits) == 4 * 2 + 4
