"""read_ahead: the same items in the same order, errors where they happened, early stops."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from infrastructure.projections.read_ahead import read_ahead


def test_items_come_in_order_and_all_of_them() -> None:
    assert list(read_ahead(range(1000), depth=3)) == list(range(1000))


def test_the_producer_runs_ahead_while_the_consumer_works() -> None:
    produced: list[int] = []
    second_made = threading.Event()

    def items() -> Iterator[int]:
        for i in range(3):
            produced.append(i)
            if i == 1:
                second_made.set()
            yield i

    reader = read_ahead(items(), depth=2)
    assert next(reader) == 0
    # The consumer holds item 0; the producer makes item 1 meanwhile, in its own thread.
    assert second_made.wait(5)
    assert list(reader) == [1, 2]


def test_a_producer_error_is_raised_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("corrupt batch")

    reader = read_ahead(items())
    assert next(reader) == 1
    assert next(reader) == 2
    with pytest.raises(ValueError, match="corrupt batch"):
        next(reader)


def test_stopping_early_stops_the_producer() -> None:
    made: list[int] = []

    def endless() -> Iterator[int]:
        i = 0
        while True:
            made.append(i)
            yield i
            i += 1

    reader = read_ahead(endless(), depth=2)
    assert [next(reader) for _ in range(5)] == [0, 1, 2, 3, 4]
    reader.close()
    count = len(made)
    threading.Event().wait(0.2)
    assert len(made) == count  # nothing more is made once closed
    assert count <= 5 + 2 + 2
