"""The split of a sale and the claw-back of a refund, in exact integer minor units.

Sale: each line's total is split by the rates frozen on the order (never current rates):
creator commission = floor(line * commission_bps / 10000) when a creator is credited,
platform fee = floor(line * platform_fee_bps / 10000), the seller's proceeds take the
remainder, so the three parts sum to the line exactly. Line parts add up to the order.

Refund: `refunded_total` is cumulative, so each part's reversal is computed cumulatively
too: reversed_so_far(part) = floor(accrued(part) * refunded_total / gross), and this
refund reverses that minus what earlier refunds reversed. Rounding never drifts: when the
whole order is refunded every part is reversed exactly. The seller's proceeds take the
remainder of each refund, as they took the remainder of the sale.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from vitrine_commission.domain.accounts import (
    AccountRef,
    creator_payable,
    platform_cash,
    platform_fee_revenue,
    platform_first_party_revenue,
    seller_payable,
)
from vitrine_commission.domain.errors import LedgerRuleError
from vitrine_commission.domain.posting import Posting
from vitrine_schemas.events import (
    Attribution,
    AttributionSource,
    OrderPlaced,
    OrderRefunded,
    ShopKind,
)
from vitrine_schemas.money import prorate, split

# Postgres bigint: an amount past it could not be stored, so it is refused up front.
MAX_AMOUNT_MINOR = 2**63 - 1

# Transaction ids derive from the business key, so a rebuilt ledger gets the same ids.
_TRANSACTION_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:vitrine:commission:transaction")
_NAMESPACE_BYTES = _TRANSACTION_NAMESPACE.bytes


class TransactionKind(StrEnum):
    SALE = "sale"
    REFUND = "refund"
    PAYOUT = "payout"


def transaction_id(order_id: str, kind: TransactionKind, refund_id: str | None = None) -> uuid.UUID:
    key = f"{kind}:{len(order_id)}:{order_id}:{refund_id or ''}"
    # uuid.uuid5(_TRANSACTION_NAMESPACE, key), without its per-call import and namespace
    # bytes (one per posting on the hot path); a test holds the two equal.
    digest = hashlib.sha1(_NAMESPACE_BYTES + key.encode(), usedforsecurity=False).digest()
    return uuid.UUID(bytes=digest[:16], version=5)


@dataclass(frozen=True, slots=True)
class Shares:
    """One amount in three parts: seller proceeds, creator commission, platform fee.

    For a sale, what each party accrued; for a refund, what each gives back.
    """

    seller_proceeds: int
    creator_commission: int
    platform_fee: int

    @property
    def total(self) -> int:
        return self.seller_proceeds + self.creator_commission + self.platform_fee

    def __add__(self, other: Shares) -> Shares:
        return Shares(
            self.seller_proceeds + other.seller_proceeds,
            self.creator_commission + other.creator_commission,
            self.platform_fee + other.platform_fee,
        )

    @classmethod
    def zero(cls) -> Shares:
        return cls(0, 0, 0)


@dataclass(frozen=True, slots=True)
class AttributionPolicy:
    """Which attributed sales pay the creator commission.

    `commission_on_auto_identified` (default true): a sale found by automatic product
    identification still came through the creator's video, which the creator opted into,
    so it pays commission like a tagged or live sale. When false such a sale pays none and
    the commission stays with the seller.
    """

    commission_on_auto_identified: bool = True

    def credited_creator(self, attribution: Attribution) -> str | None:
        if attribution.creator_id is None or attribution.source is AttributionSource.NONE:
            return None
        if (
            attribution.source is AttributionSource.AUTO_IDENTIFIED
            and not self.commission_on_auto_identified
        ):
            return None
        return attribution.creator_id


def split_line(
    line_total_minor: int, commission_bps: int, platform_fee_bps: int, *, pays_commission: bool
) -> Shares:
    """Split one line; commission and fee are floors, the seller takes the remainder."""
    if line_total_minor < 0:
        raise LedgerRuleError(f"a line total cannot be negative, got {line_total_minor}")
    try:
        parts = split(
            line_total_minor,
            {"creator": commission_bps if pays_commission else 0, "platform": platform_fee_bps},
            remainder_to="seller",
        )
    except ValueError as exc:  # rates above 100 % would leave the seller owing
        raise LedgerRuleError(
            f"cannot split at {commission_bps} bp commission + {platform_fee_bps} bp fee: {exc}"
        ) from exc
    return Shares(parts["seller"], parts["creator"], parts["platform"])


def split_sale(
    lines: Sequence[tuple[int, int]], platform_fee_bps: int, *, pays_commission: bool
) -> Shares:
    """Split an order of (line total, commission bp) lines; the sum of the line splits."""
    seller = creator = platform = 0
    for line_total, commission_bps in lines:
        line = split_line(
            line_total, commission_bps, platform_fee_bps, pays_commission=pays_commission
        )
        seller += line.seller_proceeds
        creator += line.creator_commission
        platform += line.platform_fee
    return Shares(seller, creator, platform)


def reverse_refund(accrued: Shares, reversed_before: Shares, refunded_total_minor: int) -> Shares:
    """The parts one refund reverses, bringing the cumulative refund to `refunded_total`.

    `reversed_before` is what earlier refunds of the order reversed (their sum); its total
    is the amount refunded before this one.
    """
    gross = accrued.total
    refunded_before = reversed_before.total
    if not refunded_before < refunded_total_minor <= gross:
        raise LedgerRuleError(
            f"refunded total {refunded_total_minor} must exceed the {refunded_before} already"
            f" refunded and not exceed the order's {gross}"
        )
    creator = prorate(accrued.creator_commission, refunded_total_minor, gross)
    platform = prorate(accrued.platform_fee, refunded_total_minor, gross)
    creator -= reversed_before.creator_commission
    platform -= reversed_before.platform_fee
    seller = refunded_total_minor - refunded_before - creator - platform
    return Shares(seller, creator, platform)


@dataclass(frozen=True, slots=True)
class BookedOrder:
    """What the ledger keeps of a sale to book its refunds: parties, currency, parts."""

    order_id: str
    shop_id: str
    seller_id: str
    shop_kind: ShopKind
    creator_id: str | None  # the creator credited with commission, if any
    currency: str
    accrued: Shares

    @property
    def proceeds_account(self) -> AccountRef:
        # The platform's own shop has no seller to owe: its proceeds are platform revenue.
        if self.shop_kind is ShopKind.FIRST_PARTY:
            return platform_first_party_revenue(self.currency)
        return seller_payable(self.seller_id, self.currency)

    @property
    def creator_account(self) -> AccountRef | None:
        return creator_payable(self.creator_id, self.currency) if self.creator_id else None


@dataclass(frozen=True, slots=True)
class LedgerTransaction:
    """One ledger transaction: a sale or a refund of an order (or a payout), and its
    entries."""

    id: uuid.UUID
    order_id: str | None  # None for a payout
    kind: TransactionKind
    refund_id: str | None
    currency: str
    shares: Shares  # accrued (sale) or reversed (refund), each as a positive flow
    posting: Posting

    @property
    def amount_minor(self) -> int:
        return self.shares.total


def _legs(order: BookedOrder, shares: Shares, sign: int) -> Posting:
    creator_account = order.creator_account
    if creator_account is None and shares.creator_commission:
        raise LedgerRuleError("commission without a credited creator")
    legs: list[tuple[AccountRef, int]] = [
        (platform_cash(order.currency), sign * shares.total),
        (order.proceeds_account, -sign * shares.seller_proceeds),
        (platform_fee_revenue(order.currency), -sign * shares.platform_fee),
    ]
    if creator_account is not None:
        legs.append((creator_account, -sign * shares.creator_commission))
    return Posting.of(*legs)


def book_sale(
    order: OrderPlaced, policy: AttributionPolicy
) -> tuple[BookedOrder, LedgerTransaction]:
    """The ledger transaction of a placed order: cash in, split by the frozen rates.

    Debit platform cash with the gross; credit the proceeds account (seller payable, or
    first-party revenue), the creator's payable and the platform's fee revenue.
    """
    currency = order.total.currency
    lines: list[tuple[int, int]] = []
    gross = 0
    for line in order.lines:  # one pass: this runs once per posting
        price = line.unit_price
        if price.currency != currency:
            raise LedgerRuleError(f"order {order.order_id} mixes currencies")
        line_total = price.amount_minor * line.quantity
        lines.append((line_total, line.commission_bps))
        gross += line_total
    if gross != order.total.amount_minor:
        # The ledger cannot guess how to split a difference (shipping, a discount).
        raise LedgerRuleError(
            f"order {order.order_id}: lines sum to {gross} but the total is"
            f" {order.total.amount_minor}"
        )
    if gross > MAX_AMOUNT_MINOR:
        raise LedgerRuleError(f"order {order.order_id}: total {gross} is too large to book")
    creator_id = policy.credited_creator(order.attribution)
    shares = split_sale(lines, order.platform_fee_bps, pays_commission=creator_id is not None)
    booked = BookedOrder(
        order_id=order.order_id,
        shop_id=order.shop_id,
        seller_id=order.seller_id,
        shop_kind=order.shop_kind,
        creator_id=creator_id,
        currency=currency,
        accrued=shares,
    )
    transaction = LedgerTransaction(
        id=transaction_id(order.order_id, TransactionKind.SALE),
        order_id=order.order_id,
        kind=TransactionKind.SALE,
        refund_id=None,
        currency=currency,
        shares=shares,
        posting=_legs(booked, shares, +1),
    )
    return booked, transaction


def book_refund(
    order: BookedOrder, reversed_before: Shares, refund: OrderRefunded
) -> LedgerTransaction:
    """The ledger transaction of a refund: cash out, each share clawed back in proportion.

    The reverse of the sale's legs. A creator's payable may go negative when commission
    was paid out before the refund: the claw-back is kept as a debt, never dropped.
    """
    if refund.order_id != order.order_id:
        raise LedgerRuleError(f"refund of {refund.order_id} applied to order {order.order_id}")
    amounts = (refund.amount, refund.refunded_total, refund.order_total)
    if any(money.currency != order.currency for money in amounts):
        raise LedgerRuleError(
            f"refund {refund.refund_id} is not in the order's currency {order.currency}"
        )
    if refund.order_total.amount_minor != order.accrued.total:
        raise LedgerRuleError(
            f"refund {refund.refund_id} says the order total is"
            f" {refund.order_total.amount_minor}, the ledger booked {order.accrued.total}"
        )
    refunded_before = reversed_before.total
    if refunded_before + refund.amount.amount_minor != refund.refunded_total.amount_minor:
        # A skipped or reordered refund: replay the missing one first rather than guess.
        raise LedgerRuleError(
            f"refund {refund.refund_id} of {refund.amount.amount_minor} does not bring the"
            f" {refunded_before} already refunded to {refund.refunded_total.amount_minor}"
        )
    shares = reverse_refund(order.accrued, reversed_before, refund.refunded_total.amount_minor)
    return LedgerTransaction(
        id=transaction_id(order.order_id, TransactionKind.REFUND, refund.refund_id),
        order_id=order.order_id,
        kind=TransactionKind.REFUND,
        refund_id=refund.refund_id,
        currency=order.currency,
        shares=shares,
        posting=_legs(order, shares, -1),
    )
