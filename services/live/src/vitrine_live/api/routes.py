"""Live's HTTP API: start a session, pin and unpin products, end it, read sessions with
their pins and sales. Domain errors become 404/409/422 through the runtime's mapping."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from vitrine_live import usecases
from vitrine_live.domain.model import Pin, Sales, Session, SessionStatus
from vitrine_live.usecases import Change, LiveDeps
from vitrine_schemas.events import ProductStatus
from vitrine_schemas.money import Money

Id = Annotated[str, Field(min_length=1, max_length=128)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "session or product not found"},
    409: {"description": "session ended, creator already live, product not for sale"},
    422: {"description": "invalid request"},
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StartSessionIn(_In):
    creator_id: Id
    title: str = Field(min_length=1, max_length=200)


class PinIn(_In):
    product_id: Id


class PinnedProductOut(BaseModel):
    product_id: str
    pinned_at: datetime
    title: str | None
    price: Money | None
    status: ProductStatus | None

    @classmethod
    def of(cls, pin: Pin) -> PinnedProductOut:
        p = pin.product
        return cls(
            product_id=pin.product_id,
            pinned_at=pin.pinned_at,
            title=p.title if p else None,
            price=p.price if p else None,
            status=p.status if p else None,
        )


class SalesOut(BaseModel):
    """Sales in one currency: gross of all attributed orders, refunds, and what is left."""

    currency: str
    orders: int
    gross: Money
    refunded: Money
    net: Money

    @classmethod
    def of(cls, s: Sales) -> SalesOut:
        return cls(
            currency=s.currency, orders=s.orders, gross=s.gross, refunded=s.refunded, net=s.net
        )


class SessionOut(BaseModel):
    session_id: str
    creator_id: str
    title: str
    status: SessionStatus
    started_at: datetime
    ended_at: datetime | None
    pinned_products: list[PinnedProductOut]
    sales: list[SalesOut]

    @classmethod
    def of(cls, s: Session) -> SessionOut:
        return cls(
            session_id=s.session_id,
            creator_id=s.creator_id,
            title=s.title,
            status=s.status,
            started_at=s.started_at,
            ended_at=s.ended_at,
            pinned_products=[PinnedProductOut.of(p) for p in s.pins],
            sales=[SalesOut.of(x) for x in s.sales],
        )


class SessionListOut(BaseModel):
    sessions: list[SessionOut]


def _answer(response: Response, change: Change, created: int) -> SessionOut:
    # `created` when the call changed the session; 200 for a no-op repeat of it.
    response.status_code = created if change.changed else 200
    return SessionOut.of(change.session)


def build_router(deps: LiveDeps) -> APIRouter:
    router = APIRouter(tags=["live"])

    @router.post("/sessions", status_code=201, responses=_ERRORS)
    async def start_session(body: StartSessionIn) -> SessionOut:
        """Go live: emits `live.started`. 409 if the creator is already live."""
        return SessionOut.of(await usecases.start_session(deps, body.creator_id, body.title))

    @router.get("/sessions", responses=_ERRORS)
    async def list_sessions(
        creator_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
        status: SessionStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> SessionListOut:
        """Sessions, newest first, optionally of one creator and/or in one status."""
        found = await usecases.list_sessions(
            deps, creator_id=creator_id, status=status, limit=limit
        )
        return SessionListOut(sessions=[SessionOut.of(s) for s in found])

    @router.get("/sessions/{session_id}", responses=_ERRORS)
    async def get_session(session_id: str) -> SessionOut:
        return SessionOut.of(await usecases.get_session(deps, session_id))

    @router.post("/sessions/{session_id}/pins", status_code=201, responses=_ERRORS)
    async def pin_product(session_id: str, body: PinIn, response: Response) -> SessionOut:
        """Pin a product for viewers: emits `live.product_pinned` (201); pinning a pinned
        product again changes nothing (200)."""
        change = await usecases.pin_product(deps, session_id, body.product_id)
        return _answer(response, change, 201)

    @router.delete("/sessions/{session_id}/pins/{product_id}", responses=_ERRORS)
    async def unpin_product(session_id: str, product_id: str) -> SessionOut:
        """Unpin: emits `live.product_unpinned`; a product that is not pinned is a no-op."""
        change = await usecases.unpin_product(deps, session_id, product_id)
        return SessionOut.of(change.session)

    @router.post("/sessions/{session_id}/end", responses=_ERRORS)
    async def end_session(session_id: str) -> SessionOut:
        """End the session: emits `live.ended` once; ending it again returns it unchanged."""
        change = await usecases.end_session(deps, session_id)
        return SessionOut.of(change.session)

    return router
