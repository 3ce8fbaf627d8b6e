"""Commission service settings: the runtime's shared knobs plus the attribution policy."""

from __future__ import annotations

from pydantic import Field

from vitrine_runtime.settings import ServiceSettings


class CommissionSettings(ServiceSettings):
    service_name: str = Field("commission", description="name in logs, metrics, consumer groups")

    # Env COMMISSION_ON_AUTO_IDENTIFIED. True by default: an auto-identified sale still came
    # through the creator's video (the creator consented to "identify similar products"),
    # so the creator earns the frozen rate. Set false to pay commission only on sales the
    # creator tagged or sold live; auto-identified sales then leave the commission with
    # the seller.
    commission_on_auto_identified: bool = Field(
        True,
        description="pay creator commission on sales attributed by automatic product"
        " identification in the creator's video",
    )
    consumer_batch_size: int = Field(
        500,
        ge=1,
        description="events applied in one transaction (bulk inserts, one offset commit);"
        " 1 applies each event in its own transaction",
    )
    payout_hold_days: float = Field(
        14.0, ge=0, description="earnings are paid out once older than this (refund window)"
    )
    payout_minimum_major: int = Field(
        10, ge=0, description="least payout, in whole units of each currency (10 EUR, 10 JPY)"
    )
