"""Shop and product rules that hold whatever stores them."""

from __future__ import annotations

from dataclasses import dataclass, replace

from vitrine_runtime.errors import InvalidRequestError
from vitrine_schemas.events import ProductStatus, ShopKind
from vitrine_schemas.money import Money

COMMISSION_MIN_BPS = 100
COMMISSION_MAX_BPS = 8000


@dataclass(frozen=True, slots=True)
class Shop:
    shop_id: str
    name: str
    kind: ShopKind
    seller_id: str


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    shop_id: str
    title: str
    price: Money
    stock: int
    stock_version: int
    commission_bps: int
    status: ProductStatus
    version: int
    image_count: int


@dataclass(frozen=True, slots=True)
class ProductChange:
    title: str | None = None
    price: Money | None = None
    stock: int | None = None
    commission_bps: int | None = None
    status: ProductStatus | None = None


def validate_terms(price: Money, stock: int, commission_bps: int) -> None:
    if price.amount_minor <= 0:
        raise InvalidRequestError("price must be positive")
    if stock < 0:
        raise InvalidRequestError("stock cannot be negative")
    if not COMMISSION_MIN_BPS <= commission_bps <= COMMISSION_MAX_BPS:
        raise InvalidRequestError(
            f"commission_bps must be {COMMISSION_MIN_BPS}..{COMMISSION_MAX_BPS} (1-80 %),"
            f" got {commission_bps}"
        )


def apply_change(product: Product, change: ProductChange) -> Product:
    """The product after a seller's edit: a new version; a new stock_version if stock moved."""
    updated = replace(
        product,
        title=change.title if change.title is not None else product.title,
        price=change.price if change.price is not None else product.price,
        stock=change.stock if change.stock is not None else product.stock,
        commission_bps=(
            change.commission_bps if change.commission_bps is not None else product.commission_bps
        ),
        status=change.status if change.status is not None else product.status,
    )
    if updated.price.currency != product.price.currency:
        raise InvalidRequestError(
            f"a product's currency cannot change ({product.price.currency} ->"
            f" {updated.price.currency}); list a new product instead"
        )
    validate_terms(updated.price, updated.stock, updated.commission_bps)
    if updated == product:
        return product
    return replace(
        updated,
        version=product.version + 1,
        stock_version=product.stock_version + (1 if updated.stock != product.stock else 0),
    )
