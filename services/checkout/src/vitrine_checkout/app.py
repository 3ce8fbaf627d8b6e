"""Composition of the checkout service: runtime, handlers, routes."""

from __future__ import annotations

from fastapi import FastAPI

from vitrine_checkout.api.routes import build_router
from vitrine_checkout.handlers import register_handlers
from vitrine_checkout.settings import CheckoutSettings
from vitrine_checkout.usecases import CheckoutDeps
from vitrine_runtime.service import ServiceRuntime
from vitrine_schemas.events import OrderPlaced, OrderRefunded

MIGRATIONS = "vitrine_checkout.migrations"


def build_runtime(settings: CheckoutSettings | None = None) -> ServiceRuntime:
    runtime = ServiceRuntime(
        settings or CheckoutSettings(),
        migrations=MIGRATIONS,
        produces=[OrderPlaced, OrderRefunded],
        description="Orders with atomic stock reservation, idempotent writes, refunds;"
        " emits order.placed and order.refunded through a transactional outbox.",
    )
    register_handlers(runtime.consumer)
    return runtime


def create_app(settings: CheckoutSettings | None = None) -> FastAPI:
    settings = settings or CheckoutSettings()
    runtime = build_runtime(settings)
    # `runtime.db` exists only once the app has started: hand the routes a getter.
    deps = CheckoutDeps(database=lambda: runtime.db, settings=settings, envelope=runtime.envelope)

    @runtime.on_stop
    async def finish_orders(_: ServiceRuntime) -> None:
        if deps.order_writer is not None:  # orders in a transaction commit before the pool goes
            await deps.order_writer.close()

    return runtime.create_app([build_router(deps)])


def main() -> None:
    app = create_app()
    runtime: ServiceRuntime = app.state.runtime
    runtime.serve(app)
