"""Run an iterator one step ahead in a thread, so its I/O overlaps with the consumer's."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield `items` in order while a thread already produces up to `depth` more.

    What the producer raises is raised here, at the place of the item it failed on. Closing the
    returned generator early lets the producer stop after the item it is working on.
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        iterator = iter(items)
        while not stop.is_set():
            try:
                item = next(iterator, _DONE)
            except BaseException as exc:  # handed to the consumer, raised there
                ready.put(_Failed(exc))
                return
            ready.put(item)
            if item is _DONE:
                return

    producer = threading.Thread(target=produce, name="read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
