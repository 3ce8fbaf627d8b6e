"""Run an iterator ahead in a background thread, a bounded number of items ahead.

The detector's two halves each leave a core partly idle: FFmpeg's frame threading gets
about 1.4 cores out of H.264 with P-frames, OpenVINO about 1.6 out of a small batch.
Decoding the next frames while the detector looks at the last batch fills those gaps
(both release the GIL). Whatever the producer raises is raised again, in order, in the
consumer; closing the consumer (or leaving its loop) stops the producer and waits for it,
so nothing still reads the source once the caller closes it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_S = 0.05  # how often a blocked producer checks whether the consumer has gone


@dataclass(frozen=True, slots=True)
class _Item(Generic[T]):
    value: T


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


class _Done:
    pass


_DONE = _Done()


def prefetch(items: Iterator[T], ahead: int, name: str = "prefetch") -> Iterator[T]:
    """Yield what `items` yields, produced up to `ahead` items early in another thread.

    `ahead` <= 0 yields straight from `items` in the calling thread.
    """
    if ahead <= 0:
        yield from items
        return
    slots: queue.Queue[_Item[T] | _Failed | _Done] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(entry: _Item[T] | _Failed | _Done) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for value in items:
                if not put(_Item(value)):
                    return
        except BaseException as exc:  # handed to the consumer, which decides
            put(_Failed(exc))
            return
        put(_DONE)

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        while True:
            entry = slots.get()
            if isinstance(entry, _Done):
                return
            if isinstance(entry, _Failed):
                raise entry.error
            yield entry.value
    finally:
        stop.set()
        producer.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()  # the producer has stopped, so the generator is not running
