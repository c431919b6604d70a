"""A run killed with SIGKILL at any moment finishes on rerun with exactly the output of an
uninterrupted run (every part, intermediate and result file), redoing only unfinished work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kill_at import KILLED, MOMENTS, run_killed_at

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
CORPUSMILL = Path(sys.executable).with_name("corpusmill")
# Many small tasks on one worker, so that a kill lands in the middle of the stage.
ARGS = [
    *(str(p) for p in sorted(SAMPLE.glob("*.gz")) + sorted(SAMPLE.glob("*.zst"))),
    "--workers",
    "1",
    "--read-split-bytes",
    "65536",
    "--tokenizer-train",
    "--tokenizer-vocab-size",
    "1024",
    "--shards-tokens-per-shard",
    "250000",
]


def run(out: Path) -> None:
    subprocess.run([CORPUSMILL, "-q", "run", *ARGS, "--out", str(out)], check=True, timeout=300)


def files(out: Path) -> dict[str, bytes]:
    """Every file a run leaves, but those holding timings (stats) or the folder's name (config)."""
    timed = {"stats.json", "config.toml", "dedup/_done.json", "tokenize/_done/train.json"}
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and str(p.relative_to(out)) not in timed
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("reference") / "out"
    run(out)
    return files(out)


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_kill_9_then_rerun_gives_the_uninterrupted_output(reference, tmp_path, moment):
    out = tmp_path / "out"
    command = [CORPUSMILL, "-q", "run", *ARGS, "--out", out]
    assert run_killed_at(command, moment, tmp_path) == KILLED, f"the run was not killed at {moment}"
    assert not (out / "index.json").exists()
    run(out)
    assert files(out) == reference
