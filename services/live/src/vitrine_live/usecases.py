"""Live's use cases: one transaction each; every state change enqueues its event with it."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar

import asyncpg

from vitrine_live import metrics
from vitrine_live.adapters import repository as repo
from vitrine_live.domain import sessions as rules
from vitrine_live.domain.errors import CreatorAlreadyLiveError
from vitrine_live.domain.model import Session, SessionStatus
from vitrine_live.settings import LiveSettings
from vitrine_runtime.db import Database
from vitrine_runtime.errors import DomainError, NotFoundError
from vitrine_runtime.outbox import enqueue
from vitrine_schemas.envelope import Envelope, Event

P = ParamSpec("P")
R = TypeVar("R")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LiveDeps:
    """What the use cases and routes need; a bare `Database` in tests, no broker."""

    database: Callable[[], Database]
    settings: LiveSettings
    envelope: Callable[[Event], Envelope[Event]]
    clock: Callable[[], datetime] = field(default=_utc_now)


@dataclass(frozen=True, slots=True)
class Change:
    """A session after a command, and whether the command changed it (emitted an event)."""

    session: Session
    changed: bool


def _counted(
    command: str,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Count each call of a session command by its outcome."""

    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def counted(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                result = await fn(*args, **kwargs)
            except DomainError as exc:
                metrics.SESSION_COMMANDS.labels(command, exc.code).inc()
                raise
            changed = result.changed if isinstance(result, Change) else True
            metrics.SESSION_COMMANDS.labels(command, "changed" if changed else "unchanged").inc()
            return result

        return counted

    return wrap


async def _locked(conn: asyncpg.Connection, session_id: str) -> Session:
    # The row lock orders commands on one session: a pin cannot slip in after an end.
    session = await repo.get_session(conn, session_id, for_update=True)
    if session is None:
        raise NotFoundError(f"live session {session_id} not found")
    return session


@_counted("start")
async def start_session(deps: LiveDeps, creator_id: str, title: str) -> Session:
    session = rules.start(str(uuid.uuid4()), creator_id, title, deps.clock())
    async with deps.database().transaction() as conn:
        if not await repo.insert_session(conn, session):
            current = await repo.live_session_of(conn, creator_id)
            raise CreatorAlreadyLiveError(
                f"creator {creator_id} is already live in session {current}; end it first"
            )
        await enqueue(conn, deps.envelope(rules.started_event(session)))
    return session


@_counted("pin")
async def pin_product(deps: LiveDeps, session_id: str, product_id: str) -> Change:
    async with deps.database().transaction() as conn:
        session = await _locked(conn, session_id)
        if session.is_live and session.is_pinned(product_id):
            return Change(session, changed=False)  # pinning twice is a no-op, not an error
        rules.check_can_pin(session, product_id, await repo.get_product(conn, product_id))
        now = deps.clock()
        await repo.add_pin(conn, session_id, product_id, now)
        await enqueue(conn, deps.envelope(rules.pinned_event(session, product_id, now)))
        return Change(await _locked(conn, session_id), changed=True)


@_counted("unpin")
async def unpin_product(deps: LiveDeps, session_id: str, product_id: str) -> Change:
    async with deps.database().transaction() as conn:
        session = await _locked(conn, session_id)
        rules.require_live(session, f"unpin {product_id}")
        if not await repo.remove_pin(conn, session_id, product_id):
            return Change(session, changed=False)  # not pinned: nothing to undo
        now = deps.clock()
        await enqueue(conn, deps.envelope(rules.unpinned_event(session, product_id, now)))
        return Change(await _locked(conn, session_id), changed=True)


@_counted("end")
async def end_session(deps: LiveDeps, session_id: str) -> Change:
    """End a session; ending an ended session returns it unchanged and emits nothing."""
    async with deps.database().transaction() as conn:
        session = await _locked(conn, session_id)
        ended, changed = rules.end(session, deps.clock())
        if changed:
            assert ended.ended_at is not None
            await repo.mark_ended(conn, session_id, ended.ended_at)
            await enqueue(conn, deps.envelope(rules.ended_event(ended)))
        return Change(ended, changed=changed)


async def get_session(deps: LiveDeps, session_id: str) -> Session:
    async with (
        deps.database().pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        session = await repo.get_session(conn, session_id)
    if session is None:
        raise NotFoundError(f"live session {session_id} not found")
    return session


async def list_sessions(
    deps: LiveDeps, *, creator_id: str | None, status: SessionStatus | None, limit: int
) -> list[Session]:
    async with (
        deps.database().pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        return await repo.list_sessions(
            conn,
            creator_id=creator_id,
            status=status,
            limit=min(limit, deps.settings.max_sessions_listed),
        )
