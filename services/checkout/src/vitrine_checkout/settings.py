"""Checkout's knobs on top of the shared service settings."""

from __future__ import annotations

from pydantic import Field

from vitrine_runtime.settings import ServiceSettings
from vitrine_schemas.money import BASIS_POINTS_WHOLE


class CheckoutSettings(ServiceSettings):
    service_name: str = "checkout"
    platform_fee_bps: int = Field(
        500,
        ge=0,
        le=BASIS_POINTS_WHOLE,
        description="platform fee in basis points, frozen on each order when it is placed",
    )
