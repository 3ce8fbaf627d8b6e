"""`breaking_changes` catches what it must, and lets optional additions through.

Most cases derive a variant of a real event model (same name, type and version) the way
a developer would edit it, and compare the schemas `envelope_schema` makes of both.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Optional

import pytest
from pydantic import Field, create_model

from vitrine_schemas.compat import breaking_changes
from vitrine_schemas.envelope import Contract, Event
from vitrine_schemas.events import (
    ALL_EVENTS,
    CommissionAccrued,
    Id,
    ObjectsDetected,
    OrderPlaced,
    OrderRefunded,
    ProductUpserted,
)
from vitrine_schemas.export import envelope_schema
from vitrine_schemas.money import Money


def variant(base: type[Event], *, drop: tuple[str, ...] = (), **fields: Any) -> type[Event]:
    """A copy of `base` (same class name, type, version and topic), fields changed.

    `drop` removes fields; keyword arguments add or replace them, as `create_model`
    field definitions (`(annotation, default_or_FieldInfo)`).
    """
    definitions: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in base.model_fields.items()
        if name not in drop
    }
    definitions.update(fields)
    model: type[Event] = create_model(
        base.__name__, __base__=Event, __doc__=base.__doc__, **definitions
    )
    model.event_type = base.event_type
    model.schema_version = base.schema_version
    model.topic = base.topic
    model.partition_field = base.partition_field
    return model


def changes(old: type[Event], new: type[Event]) -> list[str]:
    return breaking_changes(envelope_schema(old), envelope_schema(new))


@pytest.mark.parametrize("event_cls", ALL_EVENTS, ids=[c.event_type for c in ALL_EVENTS])
def test_a_schema_is_compatible_with_itself_and_with_a_faithful_copy(
    event_cls: type[Event],
) -> None:
    assert changes(event_cls, event_cls) == []
    assert changes(event_cls, variant(event_cls)) == []


# --- breaking -------------------------------------------------------------------------------


def test_renaming_a_required_field_is_breaking() -> None:
    renamed = variant(ProductUpserted, drop=("title",), name=(str, Field(min_length=1)))
    assert changes(ProductUpserted, renamed) == [
        "data.title: property removed",
        "data.name: required property added",
    ]


def test_removing_an_optional_field_is_breaking() -> None:
    assert changes(OrderRefunded, variant(OrderRefunded, drop=("reason",))) == [
        "data.reason: property removed"
    ]


def test_retyping_a_field_is_breaking() -> None:
    retyped = create_model("ProductUpserted", __base__=ProductUpserted, stock=(str, ...))
    problems = changes(ProductUpserted, retyped)
    assert problems == ["data.stock: type changed from integer to string"]


def test_retyping_a_nested_field_is_breaking_at_every_place_it_is_used() -> None:
    text_money = create_model("Money", __base__=Money, amount_minor=(str, ...))
    changed = variant(OrderPlaced, total=(text_money, ...))
    assert changes(OrderPlaced, changed) == [
        "data.total.amount_minor: type changed from integer to string",
    ]
    changed_product = variant(ProductUpserted, price=(text_money, ...))
    assert changes(ProductUpserted, changed_product) == [
        "data.price.amount_minor: type changed from integer to string",
    ]


def test_integer_to_number_counts_as_a_type_change() -> None:
    fractional = create_model(
        "ProductUpserted", __base__=ProductUpserted, image_count=(float, Field(ge=0))
    )
    assert changes(ProductUpserted, fractional) == [
        "data.image_count: type changed from integer to number"
    ]


def test_making_an_optional_field_required_is_breaking() -> None:
    required = variant(OrderRefunded, reason=(str, ...))
    assert changes(OrderRefunded, required) == ["data.reason: optional property made required"]


def test_adding_a_required_field_is_breaking() -> None:
    added = variant(OrderRefunded, refund_method=(str, ...))
    assert changes(OrderRefunded, added) == ["data.refund_method: required property added"]


def test_making_a_nullable_field_non_nullable_is_breaking() -> None:
    strict = variant(CommissionAccrued, creator_id=(Id, ...))
    assert changes(CommissionAccrued, strict) == [
        "data.creator_id: nullable made non-nullable (null no longer allowed)"
    ]


class NarrowShopKind(StrEnum):
    THIRD_PARTY = "third_party"


def test_removing_an_enum_value_is_breaking() -> None:
    narrowed = variant(ProductUpserted, shop_kind=(NarrowShopKind, ...))
    assert changes(ProductUpserted, narrowed) == [
        'data.shop_kind: enum value removed: "first_party"'
    ]


class WiderShopKind(StrEnum):
    THIRD_PARTY = "third_party"
    FIRST_PARTY = "first_party"
    MARKETPLACE = "marketplace"


def test_adding_an_enum_value_is_not_breaking() -> None:
    assert changes(ProductUpserted, variant(ProductUpserted, shop_kind=(WiderShopKind, ...))) == []


def test_changing_what_an_array_holds_is_breaking() -> None:
    changed = variant(ObjectsDetected, boxes=(list[str], Field(default_factory=list)))
    assert changes(ObjectsDetected, changed) == [
        "data.boxes[]: type changed from object (BoundingBox) to string"
    ]


class StrictOrderLine(Contract):
    product_id: Id
    title: str
    quantity: int = Field(ge=1)
    unit_price: Money
    commission_bps: int = Field(ge=100, le=8000)
    gift_wrap: bool


def test_a_required_field_added_inside_array_items_is_breaking() -> None:
    changed = variant(OrderPlaced, lines=(list[StrictOrderLine], Field(min_length=1)))
    assert changes(OrderPlaced, changed) == ["data.lines[].gift_wrap: required property added"]


def test_tightening_a_constraint_is_breaking() -> None:
    tighter = variant(ProductUpserted, title=(str, Field(min_length=3, max_length=200)))
    assert changes(ProductUpserted, tighter) == [
        "data.title: minLength tightened from 1 to 3",
        "data.title: maxLength tightened from none to 200",
    ]


def test_changing_the_event_type_or_version_is_breaking() -> None:
    renamed = variant(ProductUpserted)
    renamed.event_type = "catalog.product_saved"
    assert 'type: const changed from "catalog.product_upserted" to "catalog.product_saved"' in (
        changes(ProductUpserted, renamed)
    )


# --- not breaking ---------------------------------------------------------------------------


def test_adding_an_optional_field_is_not_breaking() -> None:
    added = variant(
        ProductUpserted,
        brand=(Optional[str], None),  # noqa: UP045 - the spelling must not matter
        tags=(list[str], Field(default_factory=list)),
        gtin=(str | None, Field(default=None, pattern=r"^\d{8,14}$")),
    )
    assert changes(ProductUpserted, added) == []


def test_loosening_is_not_breaking() -> None:
    looser = variant(
        CommissionAccrued,
        shop_id=(Id | None, None),  # required -> optional, and nullable
        order_id=(str, ...),  # constraints dropped
    )
    assert changes(CommissionAccrued, looser) == []


def test_documentation_changes_are_not_breaking() -> None:
    documented = variant(
        OrderRefunded,
        reason=(str, Field(default="", description="why, in the buyer's words",
                           examples=["too small"])),
    )  # fmt: skip
    documented.__doc__ = "Something else entirely."
    assert changes(OrderRefunded, documented) == []


# --- schema mechanics -----------------------------------------------------------------------


class Category(Contract):
    """A recursive model: compared without recursing forever."""

    name: str
    children: list[Category] = Field(default_factory=list)


class StrictCategory(Contract):
    name: str
    children: list[StrictCategory] = Field(default_factory=list)
    slug: str


def test_recursive_models_are_compared_and_terminate() -> None:
    old = variant(ProductUpserted, category=(Category | None, None))
    assert changes(old, old) == []
    new = variant(ProductUpserted, category=(StrictCategory | None, None))
    # Reported where the model is used and again where it refers to itself, then stops.
    assert changes(old, new) == [
        "data.category.children[].slug: required property added",
        "data.category.slug: required property added",
    ]


def test_refs_behind_allof_and_sibling_keywords_are_resolved() -> None:
    old = {
        "$defs": {"Money": {"type": "object", "properties": {"amount": {"type": "integer"}}}},
        "type": "object",
        "properties": {"price": {"allOf": [{"$ref": "#/$defs/Money"}], "description": "x"}},
    }
    new = {
        "$defs": {"Cash": {"type": "object", "properties": {"amount": {"type": "string"}}}},
        "type": "object",
        "properties": {"price": {"$ref": "#/$defs/Cash", "description": "y"}},
    }
    assert breaking_changes(old, new) == ["price.amount: type changed from integer to string"]


def test_unions_keep_every_old_alternative() -> None:
    old = {"properties": {"v": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}}
    wider = {"properties": {"v": {"type": ["string", "integer", "null"]}}}
    narrower = {"properties": {"v": {"anyOf": [{"type": "string"}]}}}
    assert breaking_changes(old, wider) == []
    assert breaking_changes(old, narrower) == [
        "v: type changed from string|integer to string (integer no longer accepted)"
    ]


def test_mappings_and_tuples_are_compared_by_their_values() -> None:
    old = {
        "properties": {
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
        }
    }
    new = {
        "properties": {
            "counts": {"type": "object", "additionalProperties": {"type": "string"}},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "string"}]},
        }
    }
    assert breaking_changes(old, new) == [
        "counts.*: type changed from integer to string",
        "pair[1]: type changed from integer to string",
    ]


def test_forbidding_extra_properties_is_breaking() -> None:
    old = {"type": "object", "properties": {"a": {"type": "string"}}}
    new = {**old, "additionalProperties": False}
    assert breaking_changes(old, new) == ["(root): additional properties no longer allowed"]
    assert breaking_changes(new, old) == []


def test_const_and_enum() -> None:
    def prop(schema: dict[str, Any]) -> dict[str, Any]:
        return {"properties": {"k": schema}}

    assert breaking_changes(prop({"const": "a"}), prop({"enum": ["a", "b"]})) == []
    assert breaking_changes(prop({"enum": ["a", "b"]}), prop({"const": "a"})) == [
        'k: enum value removed: "b"'
    ]
    assert breaking_changes(prop({"type": "string"}), prop({"enum": ["a"]})) == [
        'k: now restricted to enum values "a"'
    ]
    assert breaking_changes(prop({"const": 1}), prop({"const": 2})) == [
        "k: const changed from 1 to 2"
    ]


def test_only_local_refs_are_supported() -> None:
    old = {"properties": {"a": {"$ref": "https://example.com/other.json"}}}
    with pytest.raises(ValueError, match="local"):
        breaking_changes(old, old)
