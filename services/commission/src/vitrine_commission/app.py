"""Composition: the runtime, the event handlers and the HTTP routes of the service."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from vitrine_commission import metrics
from vitrine_commission.api.payouts import PayoutsApi, build_payouts_router
from vitrine_commission.api.routes import LedgerApi, build_router
from vitrine_commission.domain import AttributionPolicy
from vitrine_commission.handlers import CommissionHandlers
from vitrine_commission.payout_runs import PayoutDefaults
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
        consumer_batch_size=settings.consumer_batch_size,
    )
    policy = AttributionPolicy(commission_on_auto_identified=settings.commission_on_auto_identified)
    CommissionHandlers(runtime.envelope, policy).register(runtime.consumer)
    # The trial balance on a timer, so the imbalance gauge is fresh without a reader.
    watch = metrics.ledger_balance_watch(lambda: runtime.db)

    async def start_watch(_: ServiceRuntime) -> None:
        await watch.start()

    async def stop_watch(_: ServiceRuntime) -> None:
        await watch.stop()

    runtime.on_start(start_watch)
    runtime.on_stop(stop_watch)
    return runtime


def create_app(settings: CommissionSettings | None = None) -> FastAPI:
    settings = settings or CommissionSettings()
    runtime = build_runtime(settings)
    payouts = PayoutsApi(
        database=lambda: runtime.db,
        defaults=PayoutDefaults(
            hold=timedelta(days=settings.payout_hold_days),
            minimum_major=settings.payout_minimum_major,
        ),
    )
    return runtime.create_app(
        [build_router(LedgerApi(database=lambda: runtime.db)), build_payouts_router(payouts)]
    )


def main() -> None:
    app = create_app()
    app.state.runtime.serve(app)
