"""The service composition: what checkout consumes, produces and serves (no broker)."""

from __future__ import annotations

import pytest

from vitrine_checkout.app import build_runtime, create_app
from vitrine_checkout.settings import CheckoutSettings


def test_runtime_wiring() -> None:
    runtime = build_runtime(CheckoutSettings())
    assert runtime.name == "checkout"
    assert runtime.consumer.topics == ["live-sessions", "products"]
    assert runtime.consumer.event_types == [
        "catalog.product_upserted",
        "live.ended",
        "live.product_pinned",
        "live.product_unpinned",
        "live.started",
    ]
    spec = runtime.asyncapi()
    assert "orders" in str(spec["channels"])


def test_routes() -> None:
    app = create_app(CheckoutSettings(platform_fee_bps=250))
    # FastAPI >= 0.16x keeps included routers as one entry in app.routes: read the schema.
    paths = app.openapi()["paths"]
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert {
        ("POST", "/orders"),
        ("GET", "/orders/{order_id}"),
        ("POST", "/orders/{order_id}/refunds"),
        ("GET", "/products/{product_id}"),
    } <= routes


def test_platform_fee_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLATFORM_FEE_BPS", "725")
    assert CheckoutSettings().platform_fee_bps == 725
    assert CheckoutSettings().schema_name == "checkout"
