"""The service composition: what live consumes, produces and serves (no broker)."""

from __future__ import annotations

from vitrine_live.app import build_runtime, create_app
from vitrine_live.settings import LiveSettings


def test_runtime_wiring() -> None:
    runtime = build_runtime(LiveSettings())
    assert runtime.name == "live"
    assert runtime.consumer.topics == ["orders", "products"]
    assert runtime.consumer.event_types == [
        "catalog.product_upserted",
        "order.placed",
        "order.refunded",
    ]
    assert "live-sessions" in str(runtime.asyncapi()["channels"])


def test_routes() -> None:
    app = create_app(LiveSettings())
    # FastAPI >= 0.16x keeps included routers as one entry in app.routes: read the schema.
    paths = app.openapi()["paths"]
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert {
        ("POST", "/sessions"),
        ("GET", "/sessions"),
        ("GET", "/sessions/{session_id}"),
        ("POST", "/sessions/{session_id}/pins"),
        ("DELETE", "/sessions/{session_id}/pins/{product_id}"),
        ("POST", "/sessions/{session_id}/end"),
    } <= routes
