"""The payout run use case: one transaction that pays every payable due for a period.

Runs are serialised by a lock, so two runs (of any periods) never both pay the same
balance; a second run of a period returns the first one instead of paying again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from vitrine_commission.adapters import repository
from vitrine_commission.domain.errors import LedgerRuleError
from vitrine_commission.domain.payouts import PayoutPolicy, check_period, plan_payouts
from vitrine_runtime.db import Database
from vitrine_runtime.errors import ConflictError, InvalidRequestError

# Payouts of one run are listed with it; a run pays each account once.
_RUN_LISTING_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class PayoutDefaults:
    hold: timedelta
    minimum_major: int


@dataclass(frozen=True, slots=True)
class PayoutRunRequest:
    period: str
    hold: timedelta | None = None  # None: the service's default hold
    minimums_minor: Mapping[str, int] | None = None  # per currency; others: the default
    as_of: datetime | None = None  # None: now; never in the future


@dataclass(frozen=True, slots=True)
class PayoutRunResult:
    run: repository.PayoutRun
    payouts: list[repository.PayoutRecord]
    replayed: bool


async def run_payouts(
    database: Database, request: PayoutRunRequest, defaults: PayoutDefaults
) -> PayoutRunResult:
    try:
        period = check_period(request.period)
        policy = PayoutPolicy(
            hold=request.hold if request.hold is not None else defaults.hold,
            minimums_minor=dict(request.minimums_minor or {}),
            default_minimum_major=defaults.minimum_major,
        )
    except (LedgerRuleError, ValueError) as exc:
        raise InvalidRequestError(str(exc)) from exc
    async with database.transaction() as conn:
        await repository.lock_payout_runs(conn)
        earlier = await repository.find_payout_run(conn, period)
        if earlier is not None:
            _check_same_run(earlier, request, policy)
            payouts = await repository.list_payouts(
                conn, run_id=earlier.id, limit=_RUN_LISTING_LIMIT
            )
            return PayoutRunResult(earlier, payouts, replayed=True)

        now = await repository.database_now(conn)
        as_of = request.as_of or now
        if as_of > now:
            # A future as_of would shorten the hold: refunds not yet made could be paid out.
            raise InvalidRequestError(f"as_of {as_of.isoformat()} is in the future")
        cutoff = policy.cutoff(as_of)
        snapshots = await repository.payable_snapshots(conn, cutoff)
        planned = plan_payouts(period, snapshots, policy)
        currencies = {s.account.currency for s in snapshots} | set(policy.minimums_minor)
        run = repository.PayoutRun(
            id=uuid.uuid4(),
            period=period,
            as_of=as_of,
            cutoff=cutoff,
            hold_seconds=policy.hold.total_seconds(),
            minimums={c: policy.minimum_minor(c) for c in sorted(currencies)},
            created_at=now,
        )
        await repository.record_payout_run(conn, run, planned)
        payouts = await repository.list_payouts(conn, run_id=run.id, limit=_RUN_LISTING_LIMIT)
    return PayoutRunResult(run, payouts, replayed=False)


def _check_same_run(
    earlier: repository.PayoutRun, request: PayoutRunRequest, policy: PayoutPolicy
) -> None:
    """A period runs once; asking again with other terms is a mistake worth a 409."""
    clashes = []
    if earlier.hold_seconds != policy.hold.total_seconds():
        clashes.append(f"hold {earlier.hold_seconds:g}s")
    for currency, minimum in policy.minimums_minor.items():
        if earlier.minimums.get(currency) != minimum:
            clashes.append(f"minimum {earlier.minimums.get(currency)} {currency}")
    if request.as_of is not None and request.as_of != earlier.as_of:
        clashes.append(f"as_of {earlier.as_of.isoformat()}")
    if clashes:
        raise ConflictError(
            f"period {earlier.period} already ran with {', '.join(clashes)}; a period runs"
            " once (use a new period for a new run)"
        )
