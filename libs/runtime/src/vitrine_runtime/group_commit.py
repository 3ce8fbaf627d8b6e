"""Group commit: requests that arrive while a batch is being written go together in the next.

A busy service spends most of a small write on round trips and the commit itself, not on
the rows: one transaction for many requests pays them once. There is no timer: a request
that finds no batch in flight is written at once, alone, so an idle service answers as
fast as without grouping; under load, batches grow by themselves to what arrived during
the previous write.

`write` gets the items of one batch and returns one result per item, in order: a value,
or the exception that item's caller should see (a business refusal of one item must not
fail the others). If `write` itself raises, every item of the batch sees that error; a
writer that can do better (retry the items one by one) does so inside `write`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Write = Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]]


class GroupCommit(Generic[T, R]):
    def __init__(self, write: Write[T, R], *, max_batch: int = 64, writers: int = 1) -> None:
        """`max_batch`: most items in one write; `writers`: batches in flight at once
        (two let one batch's Python work overlap the other's database waits)."""
        if max_batch < 1 or writers < 1:
            raise ValueError("max_batch and writers must be at least 1")
        self._write = write
        self._max_batch = max_batch
        self._writers = writers
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """Write `item` with whatever else is waiting; its result, or raise its error.

        A caller cancelled before its batch starts is left out of it; once the batch has
        started, the item is written anyway (as a transaction whose reply was lost)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        # A writer that just finished may not have been discarded yet (done callbacks run
        # later): count only those still running, or this item could wait for nobody.
        self._running.difference_update([task for task in self._running if task.done()])
        if len(self._running) < self._writers:
            task = asyncio.create_task(self._drain(), name="group-commit")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch = [(i, f) for i, f in self._pending[: self._max_batch] if not f.done()]
            del self._pending[: self._max_batch]
            if not batch:
                continue
            try:
                results: Sequence[R | BaseException] = await self._write([i for i, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"group commit: {len(results)} results for {len(batch)} items"
                    )
            except Exception as exc:
                results = [exc] * len(batch)
            except asyncio.CancelledError as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                raise
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def close(self) -> None:
        """Let the batches in flight finish (service shutdown)."""
        while running := [task for task in self._running if not task.done()]:
            await asyncio.gather(*running, return_exceptions=True)
