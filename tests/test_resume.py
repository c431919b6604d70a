"""A run killed with SIGKILL at any moment finishes on rerun with exactly the output of an
uninterrupted run (every part, intermediate and result file), redoing only unfinished work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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


# Loaded by every worker of the run (Dask's worker preload): it kills the whole run, as
# `kill -9` of its process group would, when the worker sees the Nth task of a kind reach a state,
# so that each moment is met exactly, however fast or loaded the machine.
KILLER = """
import os
import signal

from distributed import WorkerPlugin

PREFIX, STATE, COUNT = {prefix!r}, {state!r}, {count!r}


class KillAt(WorkerPlugin):
    seen = 0

    def transition(self, key, start, finish, **kwargs):
        name = key[0] if isinstance(key, tuple) else key
        if finish == STATE and str(name).startswith(PREFIX + "-"):
            self.seen += 1
            if self.seen == COUNT:
                os.killpg(os.getpgid(0), signal.SIGKILL)


async def dask_setup(worker):
    await worker.plugin_add(KillAt(), name="kill-at")
"""

# Moments to kill a run at: the Nth task of a kind (a Dask key prefix) entering a state, that is
# starting ("executing") or having written its output ("memory").
MOMENTS = {
    "clean, first task running": ("clean_task", "executing", 1),
    "clean, 3 tasks done": ("clean_task", "memory", 3),
    "clean, 12 tasks done": ("clean_task", "memory", 12),
    "dedup, signatures done": ("signatures_task", "memory", 2),
    "dedup, candidates running": ("candidates_task", "executing", 1),
    "tokenize, first part encoded": ("encode_part", "memory", 1),
    "tokenize, shard being written": ("write_shard_task", "executing", 1),
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_kill_9_then_rerun_gives_the_uninterrupted_output(reference, tmp_path, moment):
    prefix, state, count = MOMENTS[moment]
    killer = tmp_path / "kill_at.py"
    killer.write_text(KILLER.format(prefix=prefix, state=state, count=count))
    out = tmp_path / "out"
    process = subprocess.run(
        [CORPUSMILL, "-q", "run", *ARGS, "--out", str(out)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DASK_DISTRIBUTED__WORKER__PRELOAD": json.dumps([str(killer)])},
        timeout=300,
    )
    assert process.returncode == -signal.SIGKILL, f"the run was not killed at {moment}"
    assert not (out / "index.json").exists()
    run(out)
    assert files(out) == reference
