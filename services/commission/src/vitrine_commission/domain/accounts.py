"""Ledger accounts: who owns one, what it holds, in which currency.

An account is named by (owner type, owner id, kind, currency); the database gives it an
id on first use. Each currency has its own accounts, so no balance ever mixes currencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from vitrine_schemas.money import minor_units

# The platform is one owner; its accounts carry this id.
PLATFORM_ID = "platform"


class OwnerType(StrEnum):
    SELLER = "seller"
    CREATOR = "creator"
    PLATFORM = "platform"


class AccountKind(StrEnum):
    CASH = "cash"  # buyer payments the platform received (an asset)
    PAYABLE = "payable"  # what the platform owes a seller or a creator (a liability)
    FEE_REVENUE = "fee_revenue"  # the platform's fee on third-party sales
    FIRST_PARTY_REVENUE = "first_party_revenue"  # proceeds of the platform's own shop
    PAYOUTS_CLEARING = "payouts_clearing"  # paid out to payees, on its way to their banks


class Side(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


# Which kinds each owner may hold; the migration's CHECK constraint mirrors this table.
ALLOWED_KINDS: Mapping[OwnerType, frozenset[AccountKind]] = {
    OwnerType.PLATFORM: frozenset(
        {
            AccountKind.CASH,
            AccountKind.FEE_REVENUE,
            AccountKind.FIRST_PARTY_REVENUE,
            AccountKind.PAYOUTS_CLEARING,
        }
    ),
    OwnerType.SELLER: frozenset({AccountKind.PAYABLE}),
    OwnerType.CREATOR: frozenset({AccountKind.PAYABLE}),
}

# The side on which an account's balance normally sits (cash is debit, the rest credit),
# so readers know that a payable of -500 means 500 owed.
NORMAL_SIDE: Mapping[AccountKind, Side] = {
    AccountKind.CASH: Side.DEBIT,
    AccountKind.PAYABLE: Side.CREDIT,
    AccountKind.FEE_REVENUE: Side.CREDIT,
    AccountKind.FIRST_PARTY_REVENUE: Side.CREDIT,
    AccountKind.PAYOUTS_CLEARING: Side.CREDIT,
}


@dataclass(frozen=True, slots=True)
class AccountRef:
    """The natural key of an account."""

    owner_type: OwnerType
    owner_id: str
    kind: AccountKind
    currency: str

    def __post_init__(self) -> None:
        if not self.owner_id:
            raise ValueError("an account needs an owner id")
        if self.kind not in ALLOWED_KINDS[self.owner_type]:
            raise ValueError(f"a {self.owner_type} cannot hold a {self.kind} account")
        minor_units(self.currency)  # rejects unknown currency codes

    @property
    def normal_side(self) -> Side:
        return NORMAL_SIDE[self.kind]


@lru_cache(maxsize=65536)  # a posting names the same accounts again and again
def platform_cash(currency: str) -> AccountRef:
    return AccountRef(OwnerType.PLATFORM, PLATFORM_ID, AccountKind.CASH, currency)


@lru_cache(maxsize=65536)
def platform_fee_revenue(currency: str) -> AccountRef:
    return AccountRef(OwnerType.PLATFORM, PLATFORM_ID, AccountKind.FEE_REVENUE, currency)


@lru_cache(maxsize=65536)
def platform_first_party_revenue(currency: str) -> AccountRef:
    return AccountRef(OwnerType.PLATFORM, PLATFORM_ID, AccountKind.FIRST_PARTY_REVENUE, currency)


@lru_cache(maxsize=65536)
def platform_payouts_clearing(currency: str) -> AccountRef:
    return AccountRef(OwnerType.PLATFORM, PLATFORM_ID, AccountKind.PAYOUTS_CLEARING, currency)


@lru_cache(maxsize=65536)
def seller_payable(seller_id: str, currency: str) -> AccountRef:
    return AccountRef(OwnerType.SELLER, seller_id, AccountKind.PAYABLE, currency)


@lru_cache(maxsize=65536)
def creator_payable(creator_id: str, currency: str) -> AccountRef:
    return AccountRef(OwnerType.CREATOR, creator_id, AccountKind.PAYABLE, currency)
