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
