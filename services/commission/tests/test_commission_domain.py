"""The ledger's rules, property-tested over amounts, rates, quantities and currencies."""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict

import pytest
from commission_testkit import line, order_placed, order_refunded
from hypothesis import assume, given
from hypothesis import strategies as st

from vitrine_commission.domain import (
    AccountKind,
    AccountRef,
    AttributionPolicy,
    LedgerRuleError,
    OwnerType,
    Posting,
    Shares,
    TransactionKind,
    UnbalancedPostingError,
    book_refund,
    book_sale,
)
from vitrine_commission.domain.accounts import (
    creator_payable,
    platform_cash,
    platform_fee_revenue,
    platform_first_party_revenue,
    seller_payable,
)
from vitrine_commission.domain.rules import transaction_id
from vitrine_schemas.events import AttributionSource, OrderPlaced, ShopKind

CURRENCIES = st.sampled_from(["JPY", "EUR", "KWD"])  # 0, 2 and 3 minor digits
COMMISSION_BPS = st.integers(100, 8000)
FEE_BPS = st.integers(0, 3000)
POLICY = AttributionPolicy()


@st.composite
def orders(draw: st.DrawFn) -> OrderPlaced:
    """An order of 1-5 lines; commission + fee stay within 100 %, as the contract demands."""
    currency = draw(CURRENCIES)
    fee = draw(FEE_BPS)
    max_commission = min(8000, 10_000 - fee)
    lines = [
        line(
            draw(st.integers(0, 10**9)),
            draw(st.integers(1, 1000)),
            draw(st.integers(100, max_commission)),
            currency,
        )
        for _ in range(draw(st.integers(1, 5)))
    ]
    return order_placed(
        "o-prop",
        lines,
        platform_fee_bps=fee,
        creator_id=draw(st.none() | st.just("creator-1")),
        source=draw(st.sampled_from(list(AttributionSource))),
        shop_kind=draw(st.sampled_from(list(ShopKind))),
    )


def balances(*postings: Posting) -> dict[AccountRef, int]:
    totals: defaultdict[AccountRef, int] = defaultdict(int)
    for posting in postings:
        for entry in posting.entries:
            totals[entry.account] += entry.amount_minor
    return {account: total for account, total in totals.items() if total}


# --- sale -------------------------------------------------------------------------------


@given(orders(), st.booleans())
def test_sale_parts_sum_to_the_whole_and_are_never_negative(
    order: OrderPlaced, on_auto: bool
) -> None:
    policy = AttributionPolicy(commission_on_auto_identified=on_auto)
    pays = policy.credited_creator(order.attribution) is not None
    booked, sale = book_sale(order, policy)
    shares = sale.shares
    gross = order.total.amount_minor
    assert shares.total == gross
    assert min(shares.seller_proceeds, shares.creator_commission, shares.platform_fee) >= 0
    lines = [
        (item.unit_price.amount_minor * item.quantity, item.commission_bps) for item in order.lines
    ]
    expected_fee = sum(total * order.platform_fee_bps // 10_000 for total, _ in lines)
    expected_commission = sum(total * bps // 10_000 for total, bps in lines) if pays else 0
    assert shares.platform_fee == expected_fee
    assert shares.creator_commission == expected_commission
    assert sale.posting.totals_by_currency() in ({}, {order.total.currency: 0})
    # The cash debit is the gross; each credit is one share.
    assert balances(sale.posting) == {
        account: amount
        for account, amount in {
            platform_cash(order.total.currency): gross,
            booked.proceeds_account: -shares.seller_proceeds,
            platform_fee_revenue(order.total.currency): -shares.platform_fee,
            **(
                {creator_payable("creator-1", order.total.currency): -shares.creator_commission}
                if pays
                else {}
            ),
        }.items()
        if amount
    }


def test_sale_uses_the_frozen_rates_line_by_line() -> None:
    order = order_placed(
        lines=[line(999, 3, commission_bps=1250), line(1, 1, commission_bps=8000)],
        platform_fee_bps=333,
    )
    _, sale = book_sale(order, POLICY)
    # 2997 * 12.5 % = 374.625 -> 374; 1 * 80 % -> 0. Fee: 2997 * 3.33 % = 99.8 -> 99; 0.
    assert sale.shares == Shares(
        seller_proceeds=2998 - 374 - 99, creator_commission=374, platform_fee=99
    )


def test_auto_identified_sale_pays_commission_by_default_and_not_when_switched_off() -> None:
    order = order_placed(source=AttributionSource.AUTO_IDENTIFIED)
    _, paid = book_sale(order, AttributionPolicy())
    assert paid.shares.creator_commission == 100
    booked, unpaid = book_sale(order, AttributionPolicy(commission_on_auto_identified=False))
    assert unpaid.shares == Shares(seller_proceeds=950, creator_commission=0, platform_fee=50)
    assert booked.creator_id is None
    assert all(e.account.owner_type is not OwnerType.CREATOR for e in unpaid.posting.entries)


@pytest.mark.parametrize(
    ("source", "creator_id"),
    [(AttributionSource.NONE, "creator-1"), (AttributionSource.CREATOR_TAGGED, None)],
)
def test_no_creator_no_commission(source: AttributionSource, creator_id: str | None) -> None:
    _, sale = book_sale(order_placed(source=source, creator_id=creator_id), POLICY)
    assert sale.shares.creator_commission == 0
    assert sale.shares.seller_proceeds == 950


def test_first_party_proceeds_are_platform_revenue() -> None:
    _, sale = book_sale(order_placed(shop_kind=ShopKind.FIRST_PARTY), POLICY)
    assert balances(sale.posting) == {
        platform_cash("EUR"): 1000,
        platform_first_party_revenue("EUR"): -850,
        platform_fee_revenue("EUR"): -50,
        creator_payable("creator-1", "EUR"): -100,
    }
    assert seller_payable("seller-1", "EUR") not in balances(sale.posting)


def test_sale_whose_lines_do_not_make_the_total_is_refused() -> None:
    order = order_placed().model_copy(update={"total": order_placed().total + order_placed().total})
    with pytest.raises(LedgerRuleError, match="lines sum to 1000"):
        book_sale(order, POLICY)


def test_sale_with_a_negative_price_is_refused() -> None:
    with pytest.raises(LedgerRuleError, match="negative"):
        book_sale(order_placed(lines=[line(-5)]), POLICY)


def test_zero_total_sale_moves_no_money() -> None:
    _, sale = book_sale(order_placed(lines=[line(0)]), POLICY)
    assert sale.posting.entries == ()
    assert sale.shares == Shares.zero()


def test_transaction_ids_derive_from_the_business_key() -> None:
    order = order_placed()
    assert book_sale(order, POLICY)[1].id == book_sale(order, POLICY)[1].id
    assert book_sale(order, POLICY)[1].id != book_sale(order_placed("o-2"), POLICY)[1].id


@given(
    order_id=st.text(min_size=1, max_size=128),
    refund_id=st.none() | st.text(min_size=1, max_size=128),
    kind=st.sampled_from(TransactionKind),
)
def test_transaction_ids_are_uuid5_of_the_business_key(
    order_id: str, refund_id: str | None, kind: TransactionKind
) -> None:
    # transaction_id hashes without uuid.uuid5's per-call overhead: same ids, so a ledger
    # booked before and after that change (or rebuilt) names its transactions alike.
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "urn:vitrine:commission:transaction")
    key = f"{kind.value}:{len(order_id)}:{order_id}:{refund_id or ''}"
    assert transaction_id(order_id, kind, refund_id) == uuid.uuid5(namespace, key)
    assert transaction_id(order_id, kind, refund_id).version == 5


def test_an_unbalanced_posting_cannot_be_built() -> None:
    with pytest.raises(UnbalancedPostingError):
        Posting.of((platform_cash("EUR"), 100), (seller_payable("s", "EUR"), -99))
    with pytest.raises(UnbalancedPostingError):  # balanced in sum, not per currency
        Posting.of((platform_cash("EUR"), 100), (seller_payable("s", "JPY"), -100))


def test_accounts_refuse_kinds_their_owner_cannot_hold() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        AccountRef(OwnerType.CREATOR, "c", AccountKind.CASH, "EUR")
    with pytest.raises(ValueError, match="unknown ISO 4217"):
        platform_cash("XXX")


# --- refunds ----------------------------------------------------------------------------


@st.composite
def refund_plans(draw: st.DrawFn) -> tuple[OrderPlaced, list[int]]:
    """A bookable order with a positive gross, and refund amounts summing to the gross."""
    order = draw(orders())
    gross = order.total.amount_minor
    assume(gross > 0)
    cuts = sorted(draw(st.sets(st.integers(1, gross - 1), max_size=8)) if gross > 1 else [])
    bounds = [0, *cuts, gross]
    return order, [b - a for a, b in itertools.pairwise(bounds)]


@given(refund_plans())
def test_partial_refunds_summing_to_the_total_reverse_everything_exactly(
    plan: tuple[OrderPlaced, list[int]],
) -> None:
    order, amounts = plan
    booked, sale = book_sale(order, POLICY)
    reversed_so_far = Shares.zero()
    refunded = 0
    postings = [sale.posting]
    for n, amount in enumerate(amounts):
        refunded += amount
        refund = book_refund(
            booked, reversed_so_far, order_refunded(order, f"r{n}", amount, refunded)
        )
        step = refund.shares
        assert refund.kind is TransactionKind.REFUND
        assert step.total == amount
        assert refund.posting.totals_by_currency() in ({}, {order.total.currency: 0})
        # Commission and fee only ever go back; the seller's remainder may step by -1 when
        # both floors move up on the same unit, and its running total stays >= 0.
        assert step.creator_commission >= 0
        assert step.platform_fee >= 0
        assert step.seller_proceeds >= -1
        reversed_so_far += step
        assert reversed_so_far.creator_commission <= booked.accrued.creator_commission
        assert reversed_so_far.platform_fee <= booked.accrued.platform_fee
        assert reversed_so_far.seller_proceeds >= 0
        postings.append(refund.posting)
    assert reversed_so_far == booked.accrued
    assert balances(*postings) == {}  # every account back to zero


@given(orders(), st.integers(0, 10**6))
def test_cumulative_reversal_does_not_depend_on_how_the_refund_was_cut(
    order: OrderPlaced, seed: int
) -> None:
    booked, _ = book_sale(order, POLICY)
    gross = order.total.amount_minor
    assume(gross >= 2)
    middle = 2 + seed % (gross - 1)  # 2..gross: a first refund of 1, then the rest
    one_step = book_refund(booked, Shares.zero(), order_refunded(order, "a", middle, middle))
    two_steps = book_refund(booked, Shares.zero(), order_refunded(order, "b", 1, 1))
    two_steps_next = book_refund(
        booked, two_steps.shares, order_refunded(order, "c", middle - 1, middle)
    )
    assert two_steps.shares + two_steps_next.shares == one_step.shares


def test_a_one_unit_refund_of_a_yen_order_balances() -> None:
    order = order_placed(lines=[line(1999, 1, commission_bps=1500, currency="JPY")])
    booked, sale = book_sale(order, POLICY)
    # 1999 yen: 15 % = 299.85 -> 299, 5 % = 99.95 -> 99, the seller takes the other 1601.
    assert sale.shares == Shares(seller_proceeds=1601, creator_commission=299, platform_fee=99)
    refund = book_refund(booked, Shares.zero(), order_refunded(order, "r1", 1, 1))
    # floor(299 * 1 / 1999) = 0 and floor(99 * 1 / 1999) = 0: the seller gives the yen back.
    assert refund.shares == Shares(seller_proceeds=1, creator_commission=0, platform_fee=0)
    assert balances(refund.posting) == {
        platform_cash("JPY"): -1,
        seller_payable("seller-1", "JPY"): 1,
    }


def test_full_refund_in_one_go_reverses_every_share() -> None:
    order = order_placed(lines=[line(333, 3, commission_bps=777)], platform_fee_bps=1234)
    booked, sale = book_sale(order, POLICY)
    refund = book_refund(booked, Shares.zero(), order_refunded(order, "r", 999, 999))
    assert refund.shares == sale.shares
    assert balances(sale.posting, refund.posting) == {}


@pytest.mark.parametrize(
    ("amount", "refunded_total", "message"),
    [
        (600, 600, "does not bring"),  # the ledger has 500 refunded already
        (100, 700, "does not bring"),
        (600, 1100, "not exceed"),
        (0, 500, "must exceed"),
    ],
)
def test_refunds_out_of_sequence_or_over_the_total_are_refused(
    amount: int, refunded_total: int, message: str
) -> None:
    order = order_placed()
    booked, _ = book_sale(order, POLICY)
    first = book_refund(booked, Shares.zero(), order_refunded(order, "r1", 500, 500))
    with pytest.raises(LedgerRuleError, match=message):
        book_refund(booked, first.shares, order_refunded(order, "r2", amount, refunded_total))


def test_refund_in_another_currency_is_refused() -> None:
    order = order_placed()
    booked, _ = book_sale(order, POLICY)
    other = order_placed(lines=[line(1000, currency="JPY")])
    with pytest.raises(LedgerRuleError, match="currency"):
        book_refund(booked, Shares.zero(), order_refunded(other, "r1", 10, 10))


def test_a_refund_step_can_hand_the_seller_one_unit_back_and_totals_stay_exact() -> None:
    # 100 cents at 10 % + 10 %: refunding 9 then 1 moves both floors up on the 10th cent,
    # so that step reverses 1 + 1 of commission and fee on a 1-cent refund: the seller's
    # remainder is -1. Cumulatively the seller has given back 9 of its 80, as it should.
    order = order_placed(lines=[line(100, commission_bps=1000)], platform_fee_bps=1000)
    booked, _ = book_sale(order, POLICY)
    first = book_refund(booked, Shares.zero(), order_refunded(order, "r1", 9, 9))
    assert first.shares == Shares(seller_proceeds=9, creator_commission=0, platform_fee=0)
    second = book_refund(booked, first.shares, order_refunded(order, "r2", 1, 10))
    assert second.shares == Shares(seller_proceeds=-1, creator_commission=1, platform_fee=1)
    assert (first.shares + second.shares).seller_proceeds == 8
