"""HTTP API of the catalog: shops, products, product images, and a video's shoppable tags."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, status
from pydantic import BaseModel, ConfigDict, Field

from vitrine_catalog.application import Catalog
from vitrine_catalog.domain.products import Product, ProductChange, Shop
from vitrine_runtime.errors import InvalidRequestError
from vitrine_schemas.events import CommissionRate, Id, ProductStatus, ShopKind
from vitrine_schemas.money import Money

ACCEPTED_IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShopIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: ShopKind = ShopKind.THIRD_PARTY
    seller_id: Id


class ShopOut(Strict):
    shop_id: str
    name: str
    kind: ShopKind
    seller_id: str

    @classmethod
    def of(cls, shop: Shop) -> ShopOut:
        return cls(shop_id=shop.shop_id, name=shop.name, kind=shop.kind, seller_id=shop.seller_id)


class ProductIn(Strict):
    title: str = Field(min_length=1, max_length=300)
    price: Money
    stock: int = Field(ge=0)
    commission_bps: CommissionRate


class ProductPatch(Strict):
    title: str | None = Field(None, min_length=1, max_length=300)
    price: Money | None = None
    stock: int | None = Field(None, ge=0)
    commission_bps: CommissionRate | None = None
    status: ProductStatus | None = None


class ProductOut(Strict):
    product_id: str
    shop_id: str
    title: str
    price: Money
    stock: int
    commission_bps: int
    status: ProductStatus
    version: int
    image_count: int

    @classmethod
    def of(cls, p: Product) -> ProductOut:
        return cls(
            product_id=p.product_id,
            shop_id=p.shop_id,
            title=p.title,
            price=p.price,
            stock=p.stock,
            commission_bps=p.commission_bps,
            status=p.status,
            version=p.version,
            image_count=p.image_count,
        )


class ImageOut(Strict):
    image_id: str
    product_id: str


class TagOut(Strict):
    track_id: str
    product_id: str
    shop_id: str
    title: str
    price: Money
    score: float
    first_seen_ms: int
    last_seen_ms: int
    matched_at: datetime


class VideoTagsOut(Strict):
    video_id: str
    tags: list[TagOut]


class TrackOut(Strict):
    track_id: str
    label: str
    first_seen_ms: int
    last_seen_ms: int
    best_product_id: str | None  # the matcher's best guess, convincing or not
    best_score: float | None
    runner_up_score: float | None
    crops_judged: int | None  # crops the matcher judged it on (None: before this was kept)
    # How much more than MATCH_SCORE_THRESHOLD this track's best guess must score: tracks
    # judged on fewer crops than a full one need more (MATCH_SHORT_TRACK_PENALTY).
    short_track_handicap: float
    # The verifier's confidence that the best guess is on screen (MATCH_RULE=verifier: a
    # track is tagged at the verifier's cut or above); None where the threshold rule judged.
    match_confidence: float | None
    tagged_product_id: str | None  # the tag, when the guess was convincing
    judged_at: datetime


class VideoTracksOut(Strict):
    video_id: str
    tracks: list[TrackOut]


def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog  # type: ignore[no-any-return]


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
router = APIRouter()


@router.post("/shops", status_code=status.HTTP_201_CREATED, tags=["shops"])
async def create_shop(body: ShopIn, catalog: CatalogDep) -> ShopOut:
    return ShopOut.of(await catalog.create_shop(body.name, body.kind, body.seller_id))


@router.get("/shops/{shop_id}", tags=["shops"])
async def get_shop(shop_id: str, catalog: CatalogDep) -> ShopOut:
    return ShopOut.of(await catalog.shop(shop_id))


@router.post("/shops/{shop_id}/products", status_code=status.HTTP_201_CREATED, tags=["products"])
async def create_product(shop_id: str, body: ProductIn, catalog: CatalogDep) -> ProductOut:
    product = await catalog.create_product(
        shop_id, body.title, body.price, body.stock, body.commission_bps
    )
    return ProductOut.of(product)


@router.get("/shops/{shop_id}/products", tags=["products"])
async def list_products(shop_id: str, catalog: CatalogDep) -> list[ProductOut]:
    return [ProductOut.of(p) for p in await catalog.products(shop_id)]


@router.get("/products/{product_id}", tags=["products"])
async def get_product(product_id: str, catalog: CatalogDep) -> ProductOut:
    return ProductOut.of(await catalog.product(product_id))


@router.patch("/products/{product_id}", tags=["products"])
async def change_product(product_id: str, body: ProductPatch, catalog: CatalogDep) -> ProductOut:
    change = ProductChange(**body.model_dump(exclude_unset=True))
    return ProductOut.of(await catalog.change_product(product_id, change))


@router.post(
    "/products/{product_id}/images",
    status_code=status.HTTP_201_CREATED,
    tags=["products"],
    openapi_extra={
        "requestBody": {
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}} for t in ACCEPTED_IMAGE_TYPES
            },
            "required": True,
        }
    },
)
async def add_image(
    product_id: str,
    request: Request,
    catalog: CatalogDep,
    content_type: Annotated[str, Header()] = "",
) -> ImageOut:
    """Upload one product image as the raw request body (JPEG, PNG or WebP)."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in ACCEPTED_IMAGE_TYPES:
        raise InvalidRequestError(
            f"Content-Type must be one of {', '.join(ACCEPTED_IMAGE_TYPES)}, got {media_type!r}"
        )
    body = await request.body()
    if not body:
        raise InvalidRequestError("the request body must be the image bytes")
    image_id = await catalog.add_image(product_id, body, media_type)
    return ImageOut(image_id=str(image_id), product_id=product_id)


@router.get("/videos/{video_id}/tags", tags=["videos"])
async def video_tags(video_id: str, catalog: CatalogDep) -> VideoTagsOut:
    """The shoppable tags of a video: matched products and when they are on screen."""
    rows = await catalog.video_tags(video_id)
    return VideoTagsOut(
        video_id=video_id,
        tags=[
            TagOut(
                track_id=r["track_id"],
                product_id=r["product_id"],
                shop_id=r["shop_id"],
                title=r["title"],
                price=Money(amount_minor=r["price_minor"], currency=r["currency"]),
                score=r["score"],
                first_seen_ms=r["first_seen_ms"],
                last_seen_ms=r["last_seen_ms"],
                matched_at=r["matched_at"],
            )
            for r in rows
        ],
    )


@router.get("/videos/{video_id}/tracks", tags=["videos"])
async def video_tracks(video_id: str, catalog: CatalogDep) -> VideoTracksOut:
    """Every tracked object of a video the catalog judged, tagged or not, with the best
    product it resembled and by how much it led the runner-up: why a track was not
    tagged (under the verifier, its confidence below the cut; under the threshold rule, a
    score below MATCH_SCORE_THRESHOLD plus its short-track handicap, or a lead below
    MATCH_MARGIN)."""
    rows = await catalog.video_tracks(video_id)
    return VideoTracksOut(
        video_id=video_id,
        tracks=[
            TrackOut(
                track_id=r["track_id"],
                label=r["label"],
                first_seen_ms=r["first_seen_ms"],
                last_seen_ms=r["last_seen_ms"],
                best_product_id=r["best_product_id"],
                best_score=r["best_score"],
                runner_up_score=r["runner_up_score"],
                crops_judged=r["crops_judged"],
                short_track_handicap=catalog.short_track_handicap(r["crops_judged"]),
                match_confidence=r["match_confidence"],
                tagged_product_id=r["tagged_product_id"],
                judged_at=r["seen_at"],
            )
            for r in rows
        ],
    )
