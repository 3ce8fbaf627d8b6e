"""One realistic payload of every event, telling one story end to end.

A creator uploads a try-on video; the detector tracks a sweater in it and the matcher
tags it with a catalog product; a viewer buys two, then returns one; the ledger books
the sale and the refund at the order's frozen rates; later the creator sells live.
Amounts are consistent with `vitrine_schemas.money` (the ledger's parts sum to the
whole), so tests and docs can lean on them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from vitrine_schemas.envelope import Event
from vitrine_schemas.events import (
    Attribution,
    AttributionSource,
    BoundingBox,
    CommissionAccrued,
    CommissionReversed,
    CropRef,
    LiveEnded,
    LiveProductPinned,
    LiveProductUnpinned,
    LiveStarted,
    ObjectsDetected,
    OrderLine,
    OrderPlaced,
    OrderRefunded,
    ProductMatched,
    ProductStatus,
    ProductUpserted,
    ShopKind,
    VideoConsentChanged,
    VideoFailed,
    VideoUploaded,
)
from vitrine_schemas.money import Money

CREATOR = "crt_01HZX3M8Q4K7P2"
VIDEO = "vid_01HZX3R0B7N9WD"
TRACK = "trk_0007"
SHOP = "shp_nordic_knits"
SELLER = "slr_01HZWZ9TQ1C5E3"
PRODUCT = "prd_merino_crew_navy_m"
ORDER = "ord_01HZY0A4G6H8JK"
REFUND = "rfd_01HZY7KQ2M3N4P"
BUYER = "byr_01HZXZZ5V6W7XY"
SESSION = "liv_01J0A1B2C3D4EF"

UNIT_PRICE = Money(amount_minor=2490, currency="EUR")  # 24.90 EUR
ORDER_TOTAL = Money(amount_minor=4980, currency="EUR")  # two sweaters
PLATFORM_FEE_BPS = 500  # 5 %
COMMISSION_BPS = 1500  # 15 %


def eur(amount_minor: int) -> Money:
    return Money(amount_minor=amount_minor, currency="EUR")


VIDEO_UPLOADED = VideoUploaded(
    video_id=VIDEO,
    creator_id=CREATOR,
    media_uri=f"media://videos/{CREATOR}/{VIDEO}/original.mp4",
    identify_products=False,
)

VIDEO_CONSENT_CHANGED = VideoConsentChanged(
    video_id=VIDEO,
    creator_id=CREATOR,
    media_uri=f"media://videos/{CREATOR}/{VIDEO}/original.mp4",
    identify_products=True,
)

VIDEO_FAILED = VideoFailed(
    video_id="vid_01HZX4C2D5F8GH",
    creator_id=CREATOR,
    reason_code="too_long",
    reason="the video is 32 minutes long; shoppable videos can be at most 15 minutes",
)

OBJECTS_DETECTED = ObjectsDetected(
    video_id=VIDEO,
    creator_id=CREATOR,
    track_id=TRACK,
    label="sweater",
    confidence=0.93,
    first_seen_ms=4_200,
    last_seen_ms=19_850,
    boxes=[
        BoundingBox(at_ms=4_200, x=0.31, y=0.22, width=0.38, height=0.45),
        BoundingBox(at_ms=12_000, x=0.29, y=0.20, width=0.41, height=0.47),
        BoundingBox(at_ms=19_850, x=0.33, y=0.24, width=0.36, height=0.44),
    ],
    crops=[
        CropRef(uri=f"s3://vitrine-media/crops/{VIDEO}/{TRACK}/12000.jpg", at_ms=12_000,
                quality=0.88),
        CropRef(uri=f"s3://vitrine-media/crops/{VIDEO}/{TRACK}/4200.jpg", at_ms=4_200,
                quality=0.71),
    ],
)  # fmt: skip

PRODUCT_MATCHED = ProductMatched(
    video_id=VIDEO,
    creator_id=CREATOR,
    track_id=TRACK,
    product_id=PRODUCT,
    shop_id=SHOP,
    score=0.87,
    first_seen_ms=4_200,
    last_seen_ms=19_850,
)

PRODUCT_UPSERTED = ProductUpserted(
    product_id=PRODUCT,
    shop_id=SHOP,
    seller_id=SELLER,
    shop_kind=ShopKind.THIRD_PARTY,
    title="Merino crew-neck sweater, navy, M",
    price=UNIT_PRICE,
    stock=42,
    stock_version=3,
    commission_bps=COMMISSION_BPS,
    status=ProductStatus.ACTIVE,
    version=7,
    image_count=5,
)

ORDER_PLACED = OrderPlaced(
    order_id=ORDER,
    buyer_id=BUYER,
    shop_id=SHOP,
    seller_id=SELLER,
    shop_kind=ShopKind.THIRD_PARTY,
    lines=[
        OrderLine(
            product_id=PRODUCT,
            title="Merino crew-neck sweater, navy, M",
            quantity=2,
            unit_price=UNIT_PRICE,
            commission_bps=COMMISSION_BPS,
        )
    ],
    total=ORDER_TOTAL,
    platform_fee_bps=PLATFORM_FEE_BPS,
    attribution=Attribution(
        source=AttributionSource.AUTO_IDENTIFIED, creator_id=CREATOR, video_id=VIDEO
    ),
    placed_at=datetime(2024, 6, 14, 18, 32, 5, tzinfo=UTC),
)

ORDER_REFUNDED = OrderRefunded(
    order_id=ORDER,
    refund_id=REFUND,
    amount=eur(2490),
    refunded_total=eur(2490),
    order_total=ORDER_TOTAL,
    reason="one of two returned: too small",
    refunded_at=datetime(2024, 6, 21, 9, 15, 0, tzinfo=UTC),
)

# 4980 EUR-cents split: creator 15 % = 747, platform 5 % = 249, seller the remaining 3984.
COMMISSION_ACCRUED = CommissionAccrued(
    order_id=ORDER,
    transaction_id="txn_01HZY0A9S1T2UV",
    shop_id=SHOP,
    creator_id=CREATOR,
    gross=ORDER_TOTAL,
    seller_proceeds=eur(3984),
    creator_commission=eur(747),
    platform_fee=eur(249),
)

# The 2490 refund at the same frozen rates: creator 373, platform 124, seller 1993.
COMMISSION_REVERSED = CommissionReversed(
    order_id=ORDER,
    refund_id=REFUND,
    transaction_id="txn_01HZY7KX4W5Y6Z",
    shop_id=SHOP,
    creator_id=CREATOR,
    refund_amount=eur(2490),
    seller_proceeds_reversed=eur(1993),
    creator_commission_reversed=eur(373),
    platform_fee_reversed=eur(124),
)

LIVE_STARTED = LiveStarted(
    session_id=SESSION,
    creator_id=CREATOR,
    title="Autumn knitwear try-on, ask me anything",
    started_at=datetime(2024, 9, 20, 19, 0, 0, tzinfo=UTC),
)

LIVE_PRODUCT_PINNED = LiveProductPinned(
    session_id=SESSION,
    creator_id=CREATOR,
    product_id=PRODUCT,
    pinned_at=datetime(2024, 9, 20, 19, 6, 30, tzinfo=UTC),
)

LIVE_PRODUCT_UNPINNED = LiveProductUnpinned(
    session_id=SESSION,
    creator_id=CREATOR,
    product_id=PRODUCT,
    unpinned_at=datetime(2024, 9, 20, 19, 14, 10, tzinfo=UTC),
)

LIVE_ENDED = LiveEnded(
    session_id=SESSION,
    creator_id=CREATOR,
    ended_at=datetime(2024, 9, 20, 19, 58, 45, tzinfo=UTC),
)

EXAMPLES: tuple[Event, ...] = (
    VIDEO_UPLOADED,
    VIDEO_CONSENT_CHANGED,
    VIDEO_FAILED,
    OBJECTS_DETECTED,
    PRODUCT_MATCHED,
    PRODUCT_UPSERTED,
    ORDER_PLACED,
    ORDER_REFUNDED,
    COMMISSION_ACCRUED,
    COMMISSION_REVERSED,
    LIVE_STARTED,
    LIVE_PRODUCT_PINNED,
    LIVE_PRODUCT_UNPINNED,
    LIVE_ENDED,
)

EXAMPLE_BY_TYPE: dict[str, Event] = {example.event_type: example for example in EXAMPLES}
