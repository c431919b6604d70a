"""What `corpusmill run` tells a user who is not at a terminal (nohup, a batch scheduler, CI): a
progress line every few seconds per stage, and every damaged record's warning once in the run's
own log, whether the workers are local or belong to a cluster started apart."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cluster_apart import cluster_started_apart

from corpusmill.core.progress import INTERVAL_VARIABLE

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
BIN = Path(sys.executable).parent
PROGRESS = re.compile(
    r" INFO corpusmill\.core\.progress: (?P<stage>[a-z :]+): (?P<done>\d+)/(?P<total>\d+) tasks"
)


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], str]:
    """Four input files, one of them a WARC whose last record is cut short; and the warning its
    damage logs."""
    folder = tmp_path_factory.mktemp("crawl")
    whole = gzip.decompress((SAMPLE / "crawl-00000.warc.gz").read_bytes())
    cut = folder / "cut.warc"
    cut.write_bytes(whole[: len(whole) // 2])
    inputs = [cut, *sorted(SAMPLE.glob("crawl-0000[12].warc.gz")), *SAMPLE.glob("*.jsonl.zst")]
    return inputs, f"{cut} at byte "


@pytest.fixture(scope="module")
def local_run(crawl, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str]:
    """A run on two local workers with stderr to a file and a progress line every 0.2 s: its exit
    status and its stderr."""
    inputs, _ = crawl
    folder = tmp_path_factory.mktemp("local")
    return corpusmill_run(inputs, folder / "out", folder / "stderr.txt", "--workers", "2")


def test_off_a_terminal_each_stage_logs_progress_lines_with_growing_counts(local_run):
    status, err = local_run
    assert status == 0, err
    lines = [match.groupdict() for match in PROGRESS.finditer(err)]
    clean = [int(line["done"]) for line in lines if line["stage"] == "clean"]
    (total,) = {int(line["total"]) for line in lines if line["stage"] == "clean"}
    # Several lines while the tasks run, their counts never falling, the last one saying all
    # are done.
    assert len(set(clean)) >= 3 and clean == sorted(clean) and clean[-1] == total
    # Clean tells each task's bytes of input, so its lines give the rate.
    assert re.search(
        rf"clean: {total}/{total} tasks \(100%\), [\d.]+ MB/s, done in \d\d:\d\d\n", err
    )
    assert re.search(r"dataset: (\d+)/\1 tasks \(100%\), done in ", err)


def test_a_damaged_record_is_logged_once_on_a_local_cluster(crawl, local_run):
    _, warning = crawl
    status, err = local_run
    assert status == 0, err
    assert err.count(warning) == 1
    assert re.search(
        rf"WARNING corpusmill\.pipeline\.readers\.\w+: {re.escape(warning)}\d+: read:", err
    )


def test_a_damaged_record_on_a_cluster_started_apart_reaches_the_client_log_once(
    crawl, tmp_path: Path
):
    inputs, warning = crawl
    with cluster_started_apart(tmp_path) as (address, [worker_log]):
        status, err = corpusmill_run(
            inputs, tmp_path / "out", tmp_path / "stderr.txt", "--scheduler", address
        )
    assert status == 0, err
    assert err.count(warning) == 1
    # Logged on the worker, which prints it to its own stderr as well.
    assert worker_log.read_text().count(warning) == 1


def corpusmill_run(inputs: list[Path], out: Path, stderr: Path, *flags: str) -> tuple[int, str]:
    """Run `corpusmill run` with stderr to a file, as nohup would; its exit status and stderr."""
    environment = {**os.environ, INTERVAL_VARIABLE: "0.2"}
    with stderr.open("w") as err:
        result = subprocess.run(
            [BIN / "corpusmill", "run", *map(str, inputs), "--out", str(out)]
            + ["--read-split-bytes", "262144", *flags],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=environment,
            timeout=300,
        )
    return result.returncode, stderr.read_text()
