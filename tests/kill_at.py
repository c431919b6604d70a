"""Killing a run as `kill -9` of its process group would, at an exact moment: when a worker sees
the Nth task of a kind reach a state, however fast or loaded the machine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

# Loaded by every worker of the run (Dask's worker preload).
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


def run_killed_at(
    command: Sequence[str | Path], moment: str, folder: Path, env: Mapping[str, str] | None = None
) -> int:
    """Run `command` (a `corpusmill run` on a local cluster) in a process group of its own, its
    workers killing the group at `moment` (one of MOMENTS); return its exit status."""
    prefix, state, count = MOMENTS[moment]
    killer = folder / "kill_at.py"
    killer.write_text(KILLER.format(prefix=prefix, state=state, count=count))
    preload = {"DASK_DISTRIBUTED__WORKER__PRELOAD": json.dumps([str(killer)])}
    process = subprocess.run(
        [str(part) for part in command],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**(os.environ if env is None else env), **preload},
        timeout=300,
    )
    return process.returncode


KILLED = -signal.SIGKILL
