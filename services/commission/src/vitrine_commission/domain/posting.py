"""A posting: the entries of one ledger transaction, balanced by construction.

Amounts are signed minor units: a debit is positive, a credit negative, so a balanced
posting sums to zero in every currency. The database checks the same rule again at
commit; this check catches a bad rule before any SQL runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from vitrine_commission.domain.accounts import AccountRef


class UnbalancedPostingError(ValueError):
    """The entries of a posting do not sum to zero in some currency."""


@dataclass(frozen=True, slots=True)
class Entry:
    account: AccountRef
    amount_minor: int  # debit +, credit -

    @property
    def currency(self) -> str:
        return self.account.currency


@dataclass(frozen=True, slots=True)
class Posting:
    entries: tuple[Entry, ...]

    def __post_init__(self) -> None:
        # One pass over the entries (this runs once per posting): no zero entry, and the
        # totals per currency; then every total must be zero.
        totals: dict[str, int] = {}
        for entry in self.entries:
            amount = entry.amount_minor
            if amount == 0:
                raise ValueError("a posting has no zero entries; leave them out")
            currency = entry.account.currency
            totals[currency] = totals.get(currency, 0) + amount
        off = {c: total for c, total in totals.items() if total != 0}
        if off:
            raise UnbalancedPostingError(f"posting does not balance: {off}")

    @classmethod
    def of(cls, *legs: tuple[AccountRef, int]) -> Posting:
        """Build a posting from (account, signed amount) legs, leaving out zero legs.

        A zero leg (no creator commission, a 0 bp fee) would only add noise to statements.
        """
        return cls(tuple(Entry(account, amount) for account, amount in legs if amount != 0))

    def totals_by_currency(self) -> Mapping[str, int]:
        totals: defaultdict[str, int] = defaultdict(int)
        for entry in self.entries:
            totals[entry.currency] += entry.amount_minor
        return dict(totals)
