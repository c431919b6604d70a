"""Progress of a step a user waits on: a tqdm bar on a terminal, and elsewhere (nohup, a batch
scheduler, CI), where a bar would show nothing, a log line every few seconds."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from corpusmill.core.errors import ConfigError

log = logging.getLogger(__name__)

# Seconds between two progress lines off a terminal: often enough to see a run move, seldom enough
# that the log of a day-long run stays readable.
INTERVAL_VARIABLE = "CORPUSMILL_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 10.0


@contextlib.contextmanager
def progress(
    desc: str, total: int, unit: str = "task", initial: int = 0, stream: TextIO | None = None
) -> Iterator[Progress]:
    """Count a step's `total` units (`initial` of them done earlier): as a bar when `stream`
    (stderr by default) is a terminal, else as an INFO line of this module's logger every
    CORPUSMILL_PROGRESS_SECONDS (10 s by default) and one when the step ends."""
    stream = stream or sys.stderr
    if _is_terminal(stream):
        # Log lines (a worker's warning) are printed above the bar rather than through it.
        with (
            logging_redirect_tqdm(),
            tqdm(total=total, initial=initial, desc=desc, unit=unit, file=stream) as bar,
        ):
            yield Progress(desc, total, unit, initial, bar=bar)
        return
    counts = Progress(desc, total, unit, initial)
    if not log.isEnabledFor(logging.INFO):
        yield counts
        return
    stop = threading.Event()
    ticker = threading.Thread(
        target=_every, args=(interval(), stop, lambda: log.info(counts.line())), daemon=True
    )
    ticker.start()
    try:
        yield counts
    finally:
        stop.set()
        ticker.join()
        log.info(counts.line())


class Progress:
    """What a step has done so far, in units and in bytes of input, and how long it took."""

    def __init__(
        self,
        desc: str,
        total: int,
        unit: str = "task",
        initial: int = 0,
        bar: tqdm | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.desc, self.total, self.unit, self.initial = desc, total, unit, initial
        self.done = initial
        self.nbytes = 0
        self._bar = bar
        self._clock = clock
        self._started = clock()

    def update(self, n: int = 1, nbytes: int = 0) -> None:
        """Count `n` more units done, which read `nbytes` bytes of input."""
        self.done += n
        self.nbytes += nbytes
        if self._bar is not None:
            if self.nbytes:
                rate = self.nbytes / 1e6 / max(self._clock() - self._started, 1e-9)
                self._bar.set_postfix_str(f"{rate:.1f} MB/s", refresh=False)
            self._bar.update(n)

    def line(self) -> str:
        """The progress as one line: `clean: 12/40 tasks (30%), 3.2 MB/s, 00:42 elapsed, about
        01:38 left`, or `..., done in 02:20` once every unit is done. The rate and the time left
        count only this step's own work, not what an earlier run did."""
        elapsed = self._clock() - self._started
        share = f" ({100 * self.done // self.total}%)" if self.total else ""
        parts = [f"{self.desc}: {self.done}/{self.total} {self.unit}s{share}"]
        if self.nbytes and elapsed > 0:
            parts.append(f"{self.nbytes / 1e6 / elapsed:.1f} MB/s")
        if self.done >= self.total:
            parts.append(f"done in {tqdm.format_interval(elapsed)}")
            return ", ".join(parts)
        parts.append(f"{tqdm.format_interval(elapsed)} elapsed")
        if self.done > self.initial:
            left = (self.total - self.done) * elapsed / (self.done - self.initial)
            parts.append(f"about {tqdm.format_interval(left)} left")
        return ", ".join(parts)


def interval() -> float:
    """Seconds between two progress lines: CORPUSMILL_PROGRESS_SECONDS, or 10."""
    value = os.environ.get(INTERVAL_VARIABLE, "")
    if not value:
        return DEFAULT_INTERVAL
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigError(
            f"{INTERVAL_VARIABLE}={value!r} is not a number of seconds; set it to one like 10, "
            "or unset it"
        )
    return seconds


def _every(seconds: float, stop: threading.Event, action: Callable[[], None]) -> None:
    """Call `action` every `seconds` until `stop` is set."""
    while not stop.wait(seconds):
        action()


def _is_terminal(stream: TextIO) -> bool:
    """True if `stream` is an open terminal, where a bar redraws in place."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
