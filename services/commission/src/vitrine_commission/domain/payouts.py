"""Payouts: what each seller and creator is paid in a run, free of I/O.

What is payable on an account (a seller's or creator's `payable`, a credit balance when
the platform owes) is decided conservatively, so that a refund is never paid out:

- earnings (credits) count only once they are older than the hold period, i.e. booked
  at or before the run's cutoff = as_of - hold;
- claw-backs and earlier payouts (debits) count at once, whenever they were booked.

payable = -(held credits + all debits). A run pays an account its payable when that is
at least the currency's minimum. A payable below zero is a debt (a refund after a
payout): nothing is paid, and the debt stays on the account, so it is netted against
the next earnings: carried to the next payout, never dropped.

The payout's posting debits the payee's payable and credits the platform's
payouts_clearing account by the same amount, so it balances by construction.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from vitrine_commission.domain.accounts import (
    AccountKind,
    AccountRef,
    OwnerType,
    platform_payouts_clearing,
)
from vitrine_commission.domain.errors import LedgerRuleError
from vitrine_commission.domain.posting import Posting
from vitrine_commission.domain.rules import LedgerTransaction, Shares, TransactionKind
from vitrine_schemas.money import minor_units

PERIOD_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._:-]{0,63}$")
_PAYOUT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:vitrine:commission:payout")


@dataclass(frozen=True, slots=True)
class PayoutPolicy:
    """How a run decides: the hold, and the least amount worth paying per currency."""

    hold: timedelta
    minimums_minor: Mapping[str, int]  # per currency, in minor units
    default_minimum_major: int = 10  # for currencies without their own minimum

    def __post_init__(self) -> None:
        if self.hold < timedelta(0):
            raise LedgerRuleError("the hold period cannot be negative")
        for currency, minimum in self.minimums_minor.items():
            minor_units(currency)  # rejects unknown codes
            if minimum < 1:
                raise LedgerRuleError(f"the minimum payout in {currency} must be at least 1")
        if self.default_minimum_major < 0:
            raise LedgerRuleError("the default minimum cannot be negative")

    def minimum_minor(self, currency: str) -> int:
        if currency in self.minimums_minor:
            return self.minimums_minor[currency]
        # Never below one minor unit: a payout of nothing is no payout.
        return max(1, self.default_minimum_major * int(10 ** minor_units(currency)))

    def cutoff(self, as_of: datetime) -> datetime:
        return as_of - self.hold


@dataclass(frozen=True, slots=True)
class PayableSnapshot:
    """One payable account as a run sees it (signed: debit +, credit -)."""

    account_id: int
    account: AccountRef
    held_credits_minor: int  # sum of credits booked at or before the cutoff (<= 0)
    debits_minor: int  # sum of all debits, whenever booked (>= 0)

    @property
    def payable_minor(self) -> int:
        """What may be paid now; negative when the payee owes the platform."""
        return -(self.held_credits_minor + self.debits_minor)


@dataclass(frozen=True, slots=True)
class PlannedPayout:
    id: uuid.UUID
    period: str
    account_id: int
    account: AccountRef
    amount_minor: int
    transaction: LedgerTransaction


def check_period(period: str) -> str:
    if not PERIOD_PATTERN.match(period):
        raise LedgerRuleError(
            f"period {period!r} must be 1-64 letters, digits, '.', '_', ':' or '-',"
            " starting with a letter or digit (e.g. 2025-01)"
        )
    return period


def payout_id(account_id: int, period: str) -> uuid.UUID:
    """One id per account and period: a retried run cannot pay an account twice."""
    return uuid.uuid5(_PAYOUT_NAMESPACE, f"{account_id}:{period}")


def payout_transaction(
    payout: uuid.UUID, account: AccountRef, amount_minor: int
) -> LedgerTransaction:
    """Debit the payee's payable, credit the platform's payouts clearing account."""
    if account.kind is not AccountKind.PAYABLE or account.owner_type is OwnerType.PLATFORM:
        raise LedgerRuleError(f"only seller and creator payables are paid out, not {account}")
    if amount_minor <= 0:
        raise LedgerRuleError(f"a payout must be positive, got {amount_minor}")
    shares = (
        Shares(seller_proceeds=amount_minor, creator_commission=0, platform_fee=0)
        if account.owner_type is OwnerType.SELLER
        else Shares(seller_proceeds=0, creator_commission=amount_minor, platform_fee=0)
    )
    return LedgerTransaction(
        id=payout,  # the payout and its ledger transaction share the id
        order_id=None,
        kind=TransactionKind.PAYOUT,
        refund_id=None,
        currency=account.currency,
        shares=shares,
        posting=Posting.of(
            (account, amount_minor),
            (platform_payouts_clearing(account.currency), -amount_minor),
        ),
    )


def plan_payouts(
    period: str, snapshots: Iterable[PayableSnapshot], policy: PayoutPolicy
) -> list[PlannedPayout]:
    """The payouts of a run: every account whose payable reaches its currency's minimum."""
    check_period(period)
    planned = []
    for snapshot in sorted(snapshots, key=lambda s: s.account_id):
        amount = snapshot.payable_minor
        if amount < policy.minimum_minor(snapshot.account.currency):
            continue  # too little, or a debt carried to a later run
        payout = payout_id(snapshot.account_id, period)
        planned.append(
            PlannedPayout(
                id=payout,
                period=period,
                account_id=snapshot.account_id,
                account=snapshot.account,
                amount_minor=amount,
                transaction=payout_transaction(payout, snapshot.account, amount),
            )
        )
    return planned
