"""GroupCommit: what arrives during a write goes in the next one, each caller gets its own
result, and no caller is left waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from vitrine_runtime.group_commit import GroupCommit


async def settle() -> None:
    """Let every task that is ready run until it waits."""
    for _ in range(5):
        await asyncio.sleep(0)


class Recorder:
    """A writer that records its batches and can be held open."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def write(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        await self.gate.wait()
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def test_an_idle_writer_writes_a_request_at_once_and_alone() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.write)
    assert await group.submit(4) == 40
    assert recorder.batches == [[4]]


async def test_requests_arriving_during_a_write_share_the_next_one() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.write, max_batch=3)
    recorder.gate.clear()
    first = asyncio.create_task(group.submit(0))
    await settle()  # the first write has started and is held
    rest = [asyncio.create_task(group.submit(n)) for n in (2, 4, 6, 8)]
    await settle()
    recorder.gate.set()

    assert await first == 0
    assert [await t for t in rest] == [20, 40, 60, 80]
    assert recorder.batches == [[0], [2, 4, 6], [8]]  # max_batch holds


async def test_one_refused_item_does_not_fail_the_others() -> None:
    group = GroupCommit(Recorder().write)
    results = await asyncio.gather(
        group.submit(2), group.submit(3), group.submit(4), return_exceptions=True
    )
    assert results[0] == 20
    assert isinstance(results[1], ValueError)
    assert str(results[1]) == "odd 3"
    assert results[2] == 40


async def test_a_failing_write_fails_every_caller_of_that_batch_only() -> None:
    calls = 0

    async def flaky(items: Sequence[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database gone")
        return list(items)

    group = GroupCommit(flaky)
    with pytest.raises(ConnectionError):
        await group.submit(1)
    # Right after a write finished: its writer is done, a new one must start.
    assert await asyncio.wait_for(group.submit(2), 5) == 2


async def test_a_caller_cancelled_before_its_batch_is_left_out() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.write)
    recorder.gate.clear()
    first = asyncio.create_task(group.submit(0))
    await settle()
    gone = asyncio.create_task(group.submit(2))
    kept = asyncio.create_task(group.submit(4))
    await settle()
    gone.cancel()
    recorder.gate.set()

    assert (await first, await kept) == (0, 40)
    assert recorder.batches == [[0], [4]]
    await group.close()


async def test_two_writers_keep_two_batches_in_flight() -> None:
    recorder = Recorder()
    group = GroupCommit(recorder.write, writers=2)
    recorder.gate.clear()
    tasks = [asyncio.create_task(group.submit(0))]
    await settle()
    tasks.append(asyncio.create_task(group.submit(2)))
    await settle()
    assert recorder.batches == [[0], [2]]  # the second did not wait for the first
    recorder.gate.set()
    assert [await t for t in tasks] == [0, 20]


def test_nonsense_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(Recorder().write, max_batch=0)
