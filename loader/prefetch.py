"""Producing the items of an iterator ahead of their consumer, in a background thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()
_POLL_SECONDS = 0.1


def prefetch(items: Iterator[T], depth: int) -> Iterator[T]:
    """Yield `items` in order while a thread produces up to `depth` of them ahead.

    An exception in the thread is raised in the consumer at the item that failed; closing the
    returned generator (or dropping it) stops the thread.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(ready, (item, None), stop):
                    return
            _put(ready, (_END, None), stop)
        except BaseException as exc:  # handed to the consumer, who raises it
            _put(ready, (_END, exc), stop)

    thread = threading.Thread(target=produce, name="corpusmill-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _put(ready: queue.Queue, entry: tuple, stop: threading.Event) -> bool:
    """Put `entry` once there is room; False if the consumer stopped first."""
    while not stop.is_set():
        try:
            ready.put(entry, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False
