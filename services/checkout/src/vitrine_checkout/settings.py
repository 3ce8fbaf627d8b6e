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
    order_group_commit_max: int = Field(
        64,
        ge=1,
        le=1000,
        description="most orders placed in one transaction when they arrive together"
        " (group commit); 1 = every order its own transaction",
    )
    order_group_commit_writers: int = Field(
        2, ge=1, le=16, description="group-commit transactions in flight at once"
    )
