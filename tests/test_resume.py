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
]


def run(out: Path) -> None:
    subprocess.run([CORPUSMILL, "-q", "run", *ARGS, "--out", str(out)], check=True, timeout=300)


def files(out: Path) -> dict[str, bytes]:
    """Every file a run leaves, but those holding timings (stats) or the folder's name (config)."""
    timed = {"stats.json", "config.toml", "dedup/_done.json"}
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


@pytest.mark.parametrize("tasks_done_before_kill", [0, 3, 12])
def test_kill_9_during_clean_then_rerun_gives_the_uninterrupted_output(
    reference, tmp_path, tasks_done_before_kill
):
    out = tmp_path / "out"
    process = subprocess.Popen(
        [CORPUSMILL, "-q", "run", *ARGS, "--out", str(out)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    markers = out / "clean" / "_done"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        started = (out / "config.toml").exists()
        done = len(list(markers.glob("*.json"))) if markers.is_dir() else 0
        if started and done >= tasks_done_before_kill:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    killed_with = len(list(markers.glob("*.json"))) if markers.is_dir() else 0
    assert killed_with < len([k for k in reference if k.startswith("clean/_done/")])
    run(out)
    assert files(out) == reference
