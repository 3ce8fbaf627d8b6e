"""Exact money: integer minor units with an ISO 4217 currency, rates in basis points.

Floats never touch an amount. A split always sums to the whole: `split` hands every
part its floor and gives the remainder to one named part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Active ISO 4217 codes and their minor-unit exponent (digits after the decimal point).
MINOR_UNITS: Mapping[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "ANG": 2, "AOA": 2, "ARS": 2, "AUD": 2,
    "AWG": 2, "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0,
    "BMD": 2, "BND": 2, "BOB": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2,
    "BZD": 2, "CAD": 2, "CDF": 2, "CHF": 2, "CLP": 0, "CNY": 2, "COP": 2, "CRC": 2,
    "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2,
    "ERN": 2, "ETB": 2, "EUR": 2, "FJD": 2, "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2,
    "GIP": 2, "GMD": 2, "GNF": 0, "GTQ": 2, "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2,
    "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2,
    "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2, "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0,
    "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2, "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2,
    "LYD": 3, "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2,
    "MRU": 2, "MUR": 2, "MVR": 2, "MWK": 2, "MXN": 2, "MYR": 2, "MZN": 2, "NAD": 2,
    "NGN": 2, "NIO": 2, "NOK": 2, "NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2,
    "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2,
    "RUB": 2, "RWF": 0, "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2,
    "SHP": 2, "SLE": 2, "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2,
    "SZL": 2, "THB": 2, "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2,
    "TWD": 2, "TZS": 2, "UAH": 2, "UGX": 0, "USD": 2, "UYU": 2, "UZS": 2, "VES": 2,
    "VND": 0, "VUV": 0, "WST": 2, "XAF": 0, "XCD": 2, "XOF": 0, "XPF": 0, "YER": 2,
    "ZAR": 2, "ZMW": 2, "ZWG": 2,
}  # fmt: skip

BASIS_POINTS_WHOLE = 10_000

CurrencyCode = Annotated[
    str,
    Field(
        min_length=3,
        max_length=3,
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 alphabetic code",
        examples=["EUR", "JPY", "KWD"],
    ),
]
BasisPoints = Annotated[int, Field(ge=0, le=BASIS_POINTS_WHOLE, description="1 bp = 0.01 %")]


class CurrencyMismatchError(ValueError):
    """Two amounts in different currencies were combined."""


def minor_units(currency: str) -> int:
    """Digits after the decimal point for an ISO 4217 code (JPY 0, EUR 2, KWD 3)."""
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise ValueError(f"unknown ISO 4217 currency code: {currency!r}") from None


class Money(BaseModel):
    """An exact amount: integer minor units (cents, yen, fils) and its currency."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount_minor: int = Field(description="amount in the currency's minor unit")
    currency: CurrencyCode

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, code: str) -> str:
        minor_units(code)
        return code

    @classmethod
    def zero(cls, currency: str) -> Self:
        return cls(amount_minor=0, currency=currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"{self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount_minor=self.amount_minor + other.amount_minor, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount_minor=self.amount_minor - other.amount_minor, currency=self.currency)

    def __neg__(self) -> Money:
        return Money(amount_minor=-self.amount_minor, currency=self.currency)

    def times(self, quantity: int) -> Money:
        return Money(amount_minor=self.amount_minor * quantity, currency=self.currency)

    def __str__(self) -> str:
        digits = minor_units(self.currency)
        sign = "-" if self.amount_minor < 0 else ""
        whole, frac = divmod(abs(self.amount_minor), 10**digits)
        return (
            f"{sign}{whole}.{frac:0{digits}d} {self.currency}"
            if digits
            else f"{sign}{whole} {self.currency}"
        )


def share_of(amount_minor: int, rate_bps: int) -> int:
    """The floor of `rate_bps` basis points of an amount, computed in integers.

    Floor towards zero, so a positive share never exceeds its rate and a negative
    amount mirrors a positive one.
    """
    if not 0 <= rate_bps <= BASIS_POINTS_WHOLE:
        raise ValueError(f"rate must be 0..{BASIS_POINTS_WHOLE} bp, got {rate_bps}")
    magnitude = abs(amount_minor) * rate_bps // BASIS_POINTS_WHOLE
    return magnitude if amount_minor >= 0 else -magnitude


def split(amount_minor: int, rates_bps: Mapping[str, int], remainder_to: str) -> dict[str, int]:
    """Split an amount by basis-point rates; whatever the floors leave goes to `remainder_to`.

    The parts always sum to `amount_minor` exactly. `remainder_to` must not be one of
    the rated parts, and the rates together may not exceed the whole.
    """
    if remainder_to in rates_bps:
        raise ValueError(f"{remainder_to!r} takes the remainder and cannot also have a rate")
    if sum(rates_bps.values()) > BASIS_POINTS_WHOLE:
        raise ValueError("rates exceed 100 %")
    parts = {name: share_of(amount_minor, rate) for name, rate in rates_bps.items()}
    parts[remainder_to] = amount_minor - sum(parts.values())
    return parts


def prorate(total_minor: int, numerator: int, denominator: int) -> int:
    """Floor of total * numerator / denominator in integers (for proportional refunds)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    if not 0 <= numerator <= denominator:
        raise ValueError("numerator must be within 0..denominator")
    magnitude = abs(total_minor) * numerator // denominator
    return magnitude if total_minor >= 0 else -magnitude
