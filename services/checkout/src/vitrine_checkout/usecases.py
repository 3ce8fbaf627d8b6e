"""Checkout's use cases: one transaction each, joining the domain, the SQL and the outbox.

Payment is out of scope here: an order is placed as paid. A payment step would sit
between reserving stock and emitting `order.placed`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from vitrine_checkout import metrics
from vitrine_checkout.adapters import repository as repo
from vitrine_checkout.domain.errors import IdempotencyKeyReusedError, OutOfStockError
from vitrine_checkout.domain.idempotency import request_fingerprint
from vitrine_checkout.domain.model import LiveSession, Order, OrderRequest, Product, Refund
from vitrine_checkout.domain.orders import (
    build_order,
    check_request,
    order_placed_event,
    reservation_plan,
)
from vitrine_checkout.domain.refunds import order_refunded_event, plan_refund
from vitrine_checkout.settings import CheckoutSettings
from vitrine_runtime import tracing
from vitrine_runtime.db import Database
from vitrine_runtime.errors import DomainError, NotFoundError
from vitrine_runtime.group_commit import GroupCommit
from vitrine_runtime.outbox import enqueue, enqueue_many
from vitrine_schemas.envelope import Envelope, Event
from vitrine_schemas.events import AttributionSource

PLACE_ORDER = "place_order"
REFUND_ORDER = "refund_order"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of an idempotent write: `replayed` when an earlier request with the same
    Idempotency-Key produced it."""

    order: Order
    replayed: bool
    refund: Refund | None = None


@dataclass(frozen=True, slots=True)
class OrderAttempt:
    """One POST /orders on its way into a group commit, with the flow it belongs to."""

    request: OrderRequest
    idempotency_key: str
    request_hash: str
    correlation_id: str | None


@dataclass(frozen=True, slots=True)
class CheckoutDeps:
    """What the use cases and routes need; built from the runtime in production and from a
    bare `Database` in tests, so neither needs a broker."""

    database: Callable[[], Database]
    settings: CheckoutSettings
    envelope: Callable[[Event], Envelope[Event]]
    clock: Callable[[], datetime] = field(default=_utc_now)
    # Orders placed concurrently share a transaction (see `place_orders`); None when
    # ORDER_GROUP_COMMIT_MAX is 1.
    order_writer: GroupCommit[OrderAttempt, Outcome] | None = field(
        default=None, init=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.settings.order_group_commit_max > 1:
            writer = GroupCommit[OrderAttempt, Outcome](
                lambda attempts: place_orders(self, attempts),
                max_batch=self.settings.order_group_commit_max,
                writers=self.settings.order_group_commit_writers,
            )
            object.__setattr__(self, "order_writer", writer)  # frozen, built once


async def place_order(
    deps: CheckoutDeps, request: OrderRequest, idempotency_key: str, fingerprint_of: dict[str, Any]
) -> Outcome:
    """Reserve stock, record the order and enqueue `order.placed`, all in one transaction.

    The order is placed as paid: payment is out of scope. `fingerprint_of` is the validated
    request as JSON data; the Idempotency-Key is bound to its hash. Any failure rolls
    everything back: no stock taken, no order, no event, no key.
    """
    try:
        check_request(request)  # shape errors need no transaction
        request_hash = request_fingerprint(PLACE_ORDER, fingerprint_of)
        if deps.order_writer is None:
            outcome = await _place_order(deps, request, idempotency_key, request_hash)
        else:
            attempt = OrderAttempt(
                request, idempotency_key, request_hash, tracing.current_correlation_id()
            )
            outcome = await deps.order_writer.submit(attempt)
    except DomainError as exc:
        metrics.ORDER_REQUESTS.labels(exc.code).inc()
        raise
    metrics.ORDER_REQUESTS.labels("replayed" if outcome.replayed else "placed").inc()
    if not outcome.replayed:
        metrics.record_order_placed(outcome.order.total)
    return outcome


async def place_orders(
    deps: CheckoutDeps, attempts: Sequence[OrderAttempt]
) -> list[Outcome | BaseException]:
    """`place_order` for orders that arrived together, in one transaction (group commit).

    Each order is judged exactly as alone, in arrival order, against the stock the orders
    before it left: a refused one gets its own error and gives its key back, the others
    are placed. Retries of a key already taken, and a key twice in the batch, replay one
    by one after the commit. Anything else going wrong rolls the batch back, and each
    order is placed again on its own transaction, so one order's fault stays its own.
    """
    results: list[Outcome | BaseException | None] = [None] * len(attempts)
    first_of_key: dict[str, int] = {}
    for n, attempt in enumerate(attempts):
        first_of_key.setdefault(attempt.idempotency_key, n)
    grouped = [n for n, a in enumerate(attempts) if first_of_key[a.idempotency_key] == n]
    try:
        async with deps.database().transaction() as conn:
            await _place_group(deps, conn, attempts, grouped, results)
    except Exception:
        results = [None] * len(attempts)  # nothing of the batch committed
    for n, attempt in enumerate(attempts):
        if results[n] is None:  # replays, repeated keys, or the batch failed
            # This runs in the writer's task: the event carries the request's own flow.
            token = tracing.set_correlation_id(attempt.correlation_id)
            try:
                results[n] = await _place_order(
                    deps, attempt.request, attempt.idempotency_key, attempt.request_hash
                )
            except Exception as exc:
                results[n] = exc
            finally:
                tracing.reset_correlation_id(token)
    return [r for r in results if r is not None]


async def _place_group(
    deps: CheckoutDeps,
    conn: asyncpg.Connection,
    attempts: Sequence[OrderAttempt],
    grouped: Sequence[int],
    results: list[Outcome | BaseException | None],
) -> None:
    order_ids = {n: str(uuid.uuid4()) for n in grouped}
    claimed = await repo.claim_idempotency_keys(
        conn,
        PLACE_ORDER,
        [(attempts[n].idempotency_key, attempts[n].request_hash, order_ids[n]) for n in grouped],
    )
    placing = [n for n in grouped if attempts[n].idempotency_key in claimed]
    if not placing:
        return
    products = await repo.lock_products(
        conn, [line.product_id for n in placing for line in attempts[n].request.lines]
    )
    sessions: dict[str, LiveSession | None] = {}
    for n in placing:
        session_id = attempts[n].request.attribution.live_session_id
        if session_id is not None and session_id not in sessions:
            sessions[session_id] = await repo.get_session(conn, session_id)
    placed: list[tuple[int, Order]] = []
    refused_keys: list[str] = []
    for n in placing:
        request = attempts[n].request
        session_id = request.attribution.live_session_id
        try:
            order = build_order(
                order_id=order_ids[n],
                request=request,
                products=products,
                session=sessions.get(session_id) if session_id is not None else None,
                platform_fee_bps=deps.settings.platform_fee_bps,
                placed_at=deps.clock(),
            )
        except DomainError as exc:
            results[n] = exc
            refused_keys.append(attempts[n].idempotency_key)
            continue
        for product_id, quantity in reservation_plan(order):  # what the next orders see
            left = products[product_id].available - quantity
            products[product_id] = dataclasses.replace(products[product_id], available=left)
        placed.append((n, order))
    await repo.release_idempotency_keys(conn, PLACE_ORDER, refused_keys)
    if not placed:
        return
    taken: Counter[str] = Counter()
    for _, order in placed:
        for product_id, quantity in reservation_plan(order):
            taken[product_id] += quantity
    # The rows are locked, so this holds after build_order's checks; the guard keeps the
    # invariant in SQL should the locking ever change (and rolls the batch back).
    if not await repo.reserve_stock_many(conn, dict(taken)):
        raise OutOfStockError("stock changed under lock")
    await repo.insert_orders(conn, [order for _, order in placed])
    envelopes = []
    for n, order in placed:
        token = tracing.set_correlation_id(attempts[n].correlation_id)
        try:
            envelopes.append(deps.envelope(order_placed_event(order)))
        finally:
            tracing.reset_correlation_id(token)
    await enqueue_many(conn, envelopes)
    for n, order in placed:
        results[n] = Outcome(order, replayed=False)


async def _place_order(
    deps: CheckoutDeps,
    request: OrderRequest,
    idempotency_key: str,
    request_hash: str,
) -> Outcome:
    order_id = str(uuid.uuid4())
    async with deps.database().transaction() as conn:
        earlier = await repo.claim_idempotency_key(
            conn, PLACE_ORDER, idempotency_key, request_hash, order_id
        )
        if earlier is not None:
            return Outcome(await _replayed_order(conn, earlier, request_hash), replayed=True)

        products: dict[str, Product] = await repo.lock_products(
            conn, [line.product_id for line in request.lines]
        )
        session = None
        if request.attribution.source is AttributionSource.LIVE:
            assert request.attribution.live_session_id is not None  # check_request saw to it
            session = await repo.get_session(conn, request.attribution.live_session_id)
        order = build_order(
            order_id=order_id,
            request=request,
            products=products,
            session=session,
            platform_fee_bps=deps.settings.platform_fee_bps,
            placed_at=deps.clock(),
        )
        for product_id, quantity in reservation_plan(order):
            # The rows are locked, so this cannot fail after build_order's stock check;
            # the guard keeps the invariant in SQL should the locking ever change.
            if not await repo.reserve_stock(conn, product_id, quantity):
                raise OutOfStockError(f"out of stock: {product_id}")
        await repo.insert_order(conn, order)
        await enqueue(conn, deps.envelope(order_placed_event(order)))
    return Outcome(order, replayed=False)


async def refund_order(
    deps: CheckoutDeps,
    order_id: str,
    *,
    amount_minor: int | None,
    reason: str,
    idempotency_key: str,
    fingerprint_of: dict[str, Any],
) -> Outcome:
    """Refund part or all of what is left on an order and enqueue `order.refunded`.

    Stock is not put back: a refund is money, and whether goods return is another matter.
    """
    try:
        outcome = await _refund_order(
            deps,
            order_id,
            amount_minor=amount_minor,
            reason=reason,
            idempotency_key=idempotency_key,
            fingerprint_of=fingerprint_of,
        )
    except DomainError as exc:
        metrics.REFUND_REQUESTS.labels(exc.code).inc()
        raise
    metrics.REFUND_REQUESTS.labels("replayed" if outcome.replayed else "refunded").inc()
    return outcome


async def _refund_order(
    deps: CheckoutDeps,
    order_id: str,
    *,
    amount_minor: int | None,
    reason: str,
    idempotency_key: str,
    fingerprint_of: dict[str, Any],
) -> Outcome:
    request_hash = request_fingerprint(REFUND_ORDER, {"order_id": order_id, **fingerprint_of})
    refund_id = str(uuid.uuid4())
    async with deps.database().transaction() as conn:
        earlier = await repo.claim_idempotency_key(
            conn, REFUND_ORDER, idempotency_key, request_hash, refund_id
        )
        if earlier is not None:
            stored_hash, earlier_refund_id = earlier
            if stored_hash != request_hash:
                raise IdempotencyKeyReusedError(
                    "this Idempotency-Key was already used for a different refund request;"
                    " use a new key for a new refund"
                )
            refund = await repo.get_refund(conn, earlier_refund_id)
            assert refund is not None, "a claimed refund key names a committed refund"
            order = await repo.get_order(conn, refund.order_id)
            assert order is not None
            return Outcome(order, replayed=True, refund=refund)

        # The row lock serialises refunds of one order, so two can never both take the rest.
        order = await repo.get_order(conn, order_id, for_update=True)
        if order is None:
            raise NotFoundError(f"order {order_id} not found")
        refund = plan_refund(
            order,
            refund_id=refund_id,
            amount_minor=amount_minor,
            reason=reason,
            refunded_at=deps.clock(),
        )
        await repo.insert_refund(conn, refund)
        await enqueue(conn, deps.envelope(order_refunded_event(order, refund)))
        refreshed = await repo.get_order(conn, order_id)
        assert refreshed is not None
    return Outcome(refreshed, replayed=False, refund=refund)


async def _replayed_order(
    conn: asyncpg.Connection, earlier: tuple[str, str], request_hash: str
) -> Order:
    stored_hash, order_id = earlier
    if stored_hash != request_hash:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was already used for a different order request;"
            " use a new key for a new order"
        )
    order = await repo.get_order(conn, order_id)
    assert order is not None, "a claimed order key names a committed order"
    return order


async def get_order(deps: CheckoutDeps, order_id: str) -> Order:
    # One snapshot for the order, its lines and its refunds, so totals always add up.
    async with (
        deps.database().pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        order = await repo.get_order(conn, order_id)
    if order is None:
        raise NotFoundError(f"order {order_id} not found")
    return order


async def get_product(deps: CheckoutDeps, product_id: str) -> Product:
    async with deps.database().pool.acquire() as conn:
        product = await repo.get_product(conn, product_id)
    if product is None:
        raise NotFoundError(f"product {product_id} not found")
    return product
