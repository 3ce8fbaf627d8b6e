"""prefetch: the same items in the same order, errors passed on, the producer stopped."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from vitrine_detector.prefetch import prefetch


def test_yields_every_item_in_order_from_another_thread() -> None:
    callers: set[int] = set()

    def numbers() -> Iterator[int]:
        for n in range(100):
            callers.add(threading.get_ident())
            yield n

    assert list(prefetch(numbers(), ahead=3)) == list(range(100))
    assert callers
    assert threading.get_ident() not in callers


def test_ahead_zero_runs_in_the_calling_thread() -> None:
    callers: set[int] = set()

    def numbers() -> Iterator[int]:
        callers.add(threading.get_ident())
        yield from range(5)

    assert list(prefetch(numbers(), ahead=0)) == [0, 1, 2, 3, 4]
    assert callers == {threading.get_ident()}


def test_an_error_comes_after_the_items_before_it() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("corrupt after two frames")

    items = prefetch(failing(), ahead=8)
    assert [next(items), next(items)] == [1, 2]
    with pytest.raises(ValueError, match="corrupt after two frames"):
        next(items)


def test_leaving_early_stops_the_producer_and_closes_the_source() -> None:
    produced: list[int] = []
    closed = threading.Event()

    def endless() -> Iterator[int]:
        n = 0
        try:
            while True:
                produced.append(n)
                yield n
                n += 1
        finally:
            closed.set()

    items = prefetch(endless(), ahead=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()  # what a consumer's `break` or exception does

    assert closed.is_set()
    count = len(produced)
    assert count <= 3 + 2 + 1  # taken, queued, and at most one blocked on a full queue
    assert len(produced) == count  # and nothing more since
    assert not [t for t in threading.enumerate() if t.name == "prefetch"]
