"""Progress of a step: what its line says (counts, MB/s, time left) on a fake clock, a line every
few seconds and one at the end off a terminal, a bar on a terminal."""

from __future__ import annotations

import io
import logging
import time

import pytest

from corpusmill.core.errors import ConfigError
from corpusmill.core.progress import INTERVAL_VARIABLE, Progress, interval, progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_line_tells_done_of_total_the_rate_and_the_time_left():
    clock = FakeClock()
    counts = Progress("clean", 40, clock=clock)
    clock.now += 20
    counts.update(10, nbytes=100_000_000)
    assert counts.line() == "clean: 10/40 tasks (25%), 5.0 MB/s, 00:20 elapsed, about 01:00 left"


def test_before_the_first_unit_a_line_tells_only_the_time_elapsed():
    clock = FakeClock()
    counts = Progress("dedup", 7, unit="part", clock=clock)
    clock.now += 75
    assert counts.line() == "dedup: 0/7 parts (0%), 01:15 elapsed"


def test_units_done_by_an_earlier_run_count_in_the_total_but_not_in_the_rate():
    clock = FakeClock()
    counts = Progress("clean", 100, initial=60, clock=clock)
    clock.now += 30
    counts.update(10)
    # 10 tasks in 30 s: the 30 left take 90 s; the 60 of the earlier run took no time here.
    assert counts.line() == "clean: 70/100 tasks (70%), 00:30 elapsed, about 01:30 left"


def test_the_last_line_tells_how_long_the_step_took():
    clock = FakeClock()
    counts = Progress("tokenize: encode", 3, clock=clock)
    for _ in range(3):
        clock.now += 1500
        counts.update(nbytes=3_000_000_000)
    assert counts.line() == "tokenize: encode: 3/3 tasks (100%), 2.0 MB/s, done in 1:15:00"


def test_off_a_terminal_a_line_comes_every_interval_and_one_at_the_end(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setenv(INTERVAL_VARIABLE, "0.05")
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger="corpusmill.core.progress"):
        with progress("clean", 2, stream=stream) as counts:
            time.sleep(0.3)
            counts.update()
            time.sleep(0.3)
            counts.update()
    lines = [record.getMessage() for record in caplog.records]
    done = [int(line.split(" ")[1].split("/")[0]) for line in lines]
    # Several lines while no task ended, their counts never falling, the last one the total.
    assert done.count(0) >= 3 and done.count(1) >= 3 and done == sorted(done)
    assert lines[-1].startswith("clean: 2/2 tasks (100%), done in ")
    assert stream.getvalue() == ""


def test_off_a_terminal_nothing_is_logged_below_the_progress_loggers_level(
    caplog: pytest.LogCaptureFixture,
):
    with (
        caplog.at_level(logging.WARNING, logger="corpusmill.core.progress"),
        progress("clean", 1, stream=io.StringIO()) as counts,
    ):
        counts.update()
    assert caplog.records == []


def test_on_a_terminal_a_bar_shows_the_counts_and_the_rate_and_nothing_is_logged(
    caplog: pytest.LogCaptureFixture,
):
    terminal = Terminal()
    with caplog.at_level(logging.INFO), progress("clean", 4, initial=1, stream=terminal) as counts:
        for _ in range(3):
            counts.update(nbytes=2_000_000)
    assert "clean: 100%" in terminal.getvalue() and "4/4" in terminal.getvalue()
    assert " MB/s" in terminal.getvalue()
    assert caplog.records == []


@pytest.mark.parametrize("value", ["ten", "0", "-5", "nan", "inf"])
def test_an_interval_that_is_no_number_of_seconds_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, value: str
):
    monkeypatch.setenv(INTERVAL_VARIABLE, value)
    with pytest.raises(ConfigError, match=f"{INTERVAL_VARIABLE}='{value}' is not a number"):
        interval()


def test_the_interval_is_ten_seconds_unless_set(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(INTERVAL_VARIABLE, raising=False)
    assert interval() == 10.0
    monkeypatch.setenv(INTERVAL_VARIABLE, "2.5")
    assert interval() == 2.5
