"""Helpers shared by checkout's tests: event builders and message framing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from vitrine_checkout.api.routes import build_router
from vitrine_checkout.usecases import CheckoutDeps
from vitrine_runtime import testing
from vitrine_runtime.testing import Deliver, api_app, message_of
from vitrine_runtime.testing import product_upserted as product_event
from vitrine_schemas.envelope import Envelope, Event

__all__ = ["Deliver", "api_client", "envelope_of", "message_of", "product_event"]


def envelope_of(event: Event) -> Envelope[Event]:
    return testing.envelope_of(event, producer="checkout")


@asynccontextmanager
async def api_client(deps: CheckoutDeps) -> AsyncIterator[httpx.AsyncClient]:
    """The checkout API with the runtime's error mapping, on a bare database: no broker."""

    transport = httpx.ASGITransport(app=api_app(build_router(deps)))
    async with httpx.AsyncClient(transport=transport, base_url="http://checkout") as http:
        yield http
