"""Composition: the runtime, the event handlers and the HTTP routes of the service."""

from __future__ import annotations

from fastapi import FastAPI

from vitrine_commission.api.routes import LedgerApi, build_router
from vitrine_commission.domain import AttributionPolicy
from vitrine_commission.handlers import CommissionHandlers
from vitrine_commission.settings import CommissionSettings
from vitrine_runtime.service import ServiceRuntime
from vitrine_schemas.events import CommissionAccrued, CommissionReversed

MIGRATIONS = "vitrine_commission.migrations"


def build_runtime(settings: CommissionSettings) -> ServiceRuntime:
    runtime = ServiceRuntime(
        settings,
        migrations=MIGRATIONS,
        produces=[CommissionAccrued, CommissionReversed],
        description="Double-entry ledger: splits every sale between seller, creator and"
        " platform at the order's frozen rates, and claws refunds back in proportion.",
    )
    policy = AttributionPolicy(commission_on_auto_identified=settings.commission_on_auto_identified)
    CommissionHandlers(runtime.envelope, policy).register(runtime.consumer)
    return runtime


def create_app(settings: CommissionSettings | None = None) -> FastAPI:
    runtime = build_runtime(settings or CommissionSettings())
    return runtime.create_app([build_router(LedgerApi(database=lambda: runtime.db))])


def main() -> None:
    app = create_app()
    app.state.runtime.serve(app)
