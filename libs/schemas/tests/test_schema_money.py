"""Money: currency validation, arithmetic, formatting, and exact splits (property-based)."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from vitrine_schemas.money import (
    BASIS_POINTS_WHOLE,
    MINOR_UNITS,
    CurrencyMismatchError,
    Money,
    minor_units,
    prorate,
    share_of,
    split,
)

# --- currency validation -----------------------------------------------------------------


@pytest.mark.parametrize("code", ["EUR", "JPY", "KWD", "USD", "CLP"])
def test_known_currencies_are_accepted(code: str) -> None:
    assert Money(amount_minor=1, currency=code).currency == code


@pytest.mark.parametrize("code", ["XYZ", "eur", "EURO", "EU", "", "€", "E1R"])
def test_unknown_or_malformed_currencies_are_rejected(code: str) -> None:
    with pytest.raises(ValidationError):
        Money(amount_minor=1, currency=code)


def test_minor_units() -> None:
    assert (minor_units("JPY"), minor_units("EUR"), minor_units("KWD")) == (0, 2, 3)
    with pytest.raises(ValueError, match="unknown ISO 4217"):
        minor_units("ABC")


def test_amounts_are_integers_only() -> None:
    with pytest.raises(ValidationError):
        Money(amount_minor=1.5, currency="EUR")
    with pytest.raises(ValidationError):
        Money(amount_minor=100, currency="EUR", amount=1)  # type: ignore[call-arg]


def test_money_is_immutable_and_round_trips_json() -> None:
    price = Money(amount_minor=2490, currency="EUR")
    with pytest.raises(ValidationError):
        price.amount_minor = 1  # type: ignore[misc]
    assert Money.model_validate_json(price.model_dump_json()) == price
    assert price.model_dump() == {"amount_minor": 2490, "currency": "EUR"}


# --- arithmetic --------------------------------------------------------------------------


def test_arithmetic_in_one_currency() -> None:
    a = Money(amount_minor=1999, currency="EUR")
    b = Money(amount_minor=1, currency="EUR")
    assert a + b == Money(amount_minor=2000, currency="EUR")
    assert a - b == Money(amount_minor=1998, currency="EUR")
    assert b - a == Money(amount_minor=-1998, currency="EUR")
    assert -a == Money(amount_minor=-1999, currency="EUR")
    assert a.times(3) == Money(amount_minor=5997, currency="EUR")
    assert Money.zero("JPY") == Money(amount_minor=0, currency="JPY")


def test_mixing_currencies_is_an_error() -> None:
    eur = Money(amount_minor=100, currency="EUR")
    usd = Money(amount_minor=100, currency="USD")
    with pytest.raises(CurrencyMismatchError, match="EUR vs USD"):
        _ = eur + usd
    with pytest.raises(CurrencyMismatchError):
        _ = eur - usd
    assert issubclass(CurrencyMismatchError, ValueError)


# --- formatting --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount_minor", "currency", "text"),
    [
        (1500, "JPY", "1500 JPY"),
        (0, "JPY", "0 JPY"),
        (-300, "JPY", "-300 JPY"),
        (1999, "EUR", "19.99 EUR"),
        (5, "EUR", "0.05 EUR"),
        (-5, "EUR", "-0.05 EUR"),
        (100000, "EUR", "1000.00 EUR"),
        (1234, "KWD", "1.234 KWD"),
        (7, "KWD", "0.007 KWD"),
        (-1001, "KWD", "-1.001 KWD"),
    ],
)
def test_str_uses_the_currency_minor_units(amount_minor: int, currency: str, text: str) -> None:
    assert str(Money(amount_minor=amount_minor, currency=currency)) == text


# --- properties of share_of / split / prorate --------------------------------------------

amounts = st.integers(min_value=-(10**15), max_value=10**15)
rates = st.integers(min_value=0, max_value=BASIS_POINTS_WHOLE)
currencies = st.sampled_from(sorted(MINOR_UNITS))


@st.composite
def rate_tables(draw: st.DrawFn) -> dict[str, int]:
    """Up to five named basis-point rates that together never exceed the whole."""
    cuts = sorted(draw(st.lists(rates, max_size=5)))
    bounds = [0, *cuts]
    return {f"part{i}": hi - lo for i, (lo, hi) in enumerate(pairwise(bounds))}


def floor_share(amount: int, numerator: int, denominator: int) -> int:
    """Exact reference: floor of |amount| * n / d, with the sign of the amount."""
    magnitude = Fraction(abs(amount) * numerator, denominator).__floor__()
    return magnitude if amount >= 0 else -magnitude


@given(amount=amounts, table=rate_tables(), currency=currencies)
def test_split_parts_sum_to_the_whole(amount: int, table: dict[str, int], currency: str) -> None:
    parts = split(amount, table, remainder_to="seller")
    assert sum(parts.values()) == amount
    assert set(parts) == {*table, "seller"}
    total = Money.zero(currency)
    for minor in parts.values():
        total = total + Money(amount_minor=minor, currency=currency)
    assert total == Money(amount_minor=amount, currency=currency)


@given(amount=amounts, table=rate_tables())
def test_split_floors_every_rated_part(amount: int, table: dict[str, int]) -> None:
    parts = split(amount, table, remainder_to="seller")
    for name, rate in table.items():
        assert parts[name] == floor_share(amount, rate, BASIS_POINTS_WHOLE)
        # Never more than the exact share, and less by under one minor unit.
        exact = Fraction(abs(amount) * rate, BASIS_POINTS_WHOLE)
        assert 0 <= exact - abs(parts[name]) < 1
    # The remainder gets its own exact share plus what the floors left, never less.
    exact_rest = Fraction(abs(amount) * (BASIS_POINTS_WHOLE - sum(table.values())),
                          BASIS_POINTS_WHOLE)  # fmt: skip
    assert 0 <= abs(parts["seller"]) - exact_rest < len(table) + 1


@given(amount=amounts, table=rate_tables())
def test_split_of_a_negative_amount_mirrors_the_positive(
    amount: int, table: dict[str, int]
) -> None:
    positive = split(amount, table, remainder_to="seller")
    negative = split(-amount, table, remainder_to="seller")
    assert negative == {name: -minor for name, minor in positive.items()}


def test_split_rejects_bad_tables() -> None:
    with pytest.raises(ValueError, match="exceed"):
        split(100, {"a": 6000, "b": 5000}, remainder_to="c")
    with pytest.raises(ValueError, match="remainder"):
        split(100, {"a": 100}, remainder_to="a")


@given(amount=amounts, rate=rates)
def test_share_of_is_the_floor_of_the_exact_share(amount: int, rate: int) -> None:
    assert share_of(amount, rate) == floor_share(amount, rate, BASIS_POINTS_WHOLE)
    assert share_of(amount, 0) == 0
    assert share_of(amount, BASIS_POINTS_WHOLE) == amount


@pytest.mark.parametrize("rate", [-1, BASIS_POINTS_WHOLE + 1])
def test_share_of_rejects_rates_outside_the_whole(rate: int) -> None:
    with pytest.raises(ValueError, match="rate"):
        share_of(100, rate)


@given(total=st.integers(min_value=1, max_value=10**15))
def test_prorate_of_the_whole_is_the_whole(total: int) -> None:
    assert prorate(total, total, total) == total
    assert prorate(-total, total, total) == -total
    assert prorate(total, 0, total) == 0


@given(
    total=amounts,
    denominator=st.integers(min_value=1, max_value=10**9),
    data=st.data(),
)
def test_prorate_floors(total: int, denominator: int, data: st.DataObject) -> None:
    numerator = data.draw(st.integers(min_value=0, max_value=denominator))
    assert prorate(total, numerator, denominator) == floor_share(total, numerator, denominator)
    assert prorate(total, denominator, denominator) == total


@given(
    total=st.integers(min_value=0, max_value=10**12),
    pieces=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=6),
)
def test_prorated_pieces_never_exceed_the_whole(total: int, pieces: list[int]) -> None:
    """Refunds prorated piece by piece add up to at most the total, short by < one per piece."""
    denominator = sum(pieces)
    shares = [prorate(total, piece, denominator) for piece in pieces]
    assert total - len(pieces) < sum(shares) <= total


def test_prorate_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError, match="denominator"):
        prorate(100, 0, 0)
    with pytest.raises(ValueError, match="numerator"):
        prorate(100, 3, 2)
    with pytest.raises(ValueError, match="numerator"):
        prorate(100, -1, 2)
