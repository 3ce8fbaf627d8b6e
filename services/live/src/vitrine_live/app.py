"""Composition of the live service: runtime, handlers, routes."""

from __future__ import annotations

from fastapi import FastAPI

from vitrine_live.api.routes import build_router
from vitrine_live.handlers import register_handlers
from vitrine_live.settings import LiveSettings
from vitrine_live.usecases import LiveDeps
from vitrine_runtime.service import ServiceRuntime
from vitrine_schemas.events import LiveEnded, LiveProductPinned, LiveProductUnpinned, LiveStarted

MIGRATIONS = "vitrine_live.migrations"


def build_runtime(settings: LiveSettings | None = None) -> ServiceRuntime:
    runtime = ServiceRuntime(
        settings or LiveSettings(),
        migrations=MIGRATIONS,
        produces=[LiveStarted, LiveProductPinned, LiveProductUnpinned, LiveEnded],
        description="Live selling sessions: start, pin products, end; sales attributed to"
        " each session from order.placed and order.refunded.",
    )
    register_handlers(runtime.consumer)
    return runtime


def create_app(settings: LiveSettings | None = None) -> FastAPI:
    settings = settings or LiveSettings()
    runtime = build_runtime(settings)
    # `runtime.db` exists only once the app has started: hand the routes a getter.
    deps = LiveDeps(database=lambda: runtime.db, settings=settings, envelope=runtime.envelope)
    return runtime.create_app([build_router(deps)])


def main() -> None:
    app = create_app()
    runtime: ServiceRuntime = app.state.runtime
    runtime.serve(app)
