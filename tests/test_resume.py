"""A run killed with SIGKILL at any moment finishes on rerun with exactly the output of an
uninterrupted run (every part, intermediate and result file), redoing only unfinished work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def clean_tasks_done(out: Path) -> int:
    markers = out / "clean" / "_done"
    return len(list(markers.glob("*.json"))) if markers.is_dir() else 0


# Moments to kill a run at, each a test of the output folder that holds for a while.
MOMENTS = {
    "clean, first task": lambda out: (out / "config.toml").exists(),
    "clean, 3 tasks done": lambda out: clean_tasks_done(out) >= 3,
    "clean, 12 tasks done": lambda out: clean_tasks_done(out) >= 12,
    "dedup": lambda out: (out / "dedup").is_dir() and not (out / "dedup" / "_done.json").exists(),
    "tokenize": lambda out: (
        (out / "dedup" / "_done.json").exists() and not (out / "index.json").exists()
    ),
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_kill_9_then_rerun_gives_the_uninterrupted_output(reference, tmp_path, moment):
    out = tmp_path / "out"
    process = subprocess.Popen(
        [CORPUSMILL, "-q", "run", *ARGS, "--out", str(out)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and not MOMENTS[moment](out):
        time.sleep(0.01)
    assert process.poll() is None, f"the run ended before it could be killed during {moment}"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert not (out / "index.json").exists()
    run(out)
    assert files(out) == reference
