"""The shared HTTP middleware: trace ids in and out, metrics by route template."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from vitrine_runtime import metrics, tracing
from vitrine_runtime.errors import NotFoundError
from vitrine_runtime.http import install_common_routes

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def _ready() -> dict[str, bool]:
    return {"ok": True}


def _app() -> FastAPI:
    app = FastAPI()
    install_common_routes(app, _ready)

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str | None]:
        if thing_id == "missing":
            raise NotFoundError("no such thing")
        return {"thing_id": thing_id, "correlation_id": tracing.current_correlation_id()}

    return app


def _count(route: str, status: str) -> float:
    value = metrics.HTTP_REQUESTS.labels("GET", route, status)._value.get()
    return float(value)


async def test_the_trace_id_flows_in_and_back_out_and_metrics_use_the_template() -> None:
    transport = httpx.ASGITransport(app=_app())
    ok_before = _count("/things/{thing_id}", "200")
    missing_before = _count("/things/{thing_id}", "404")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(
            "/things/a1", headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
        )
        missing = await client.get("/things/missing")
    assert response.status_code == 200
    assert response.json()["correlation_id"] == TRACE_ID  # bound while the handler ran
    assert response.headers["traceparent"].split("-")[1] == TRACE_ID
    assert missing.status_code == 404
    assert tracing.trace_id_from_traceparent(missing.headers["traceparent"]) is not None
    assert _count("/things/{thing_id}", "200") == ok_before + 1
    assert _count("/things/{thing_id}", "404") == missing_before + 1
    assert tracing.current_correlation_id() is None  # reset after the request
