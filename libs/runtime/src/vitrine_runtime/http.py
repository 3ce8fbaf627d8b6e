"""The HTTP face every service shares: health, readiness, metrics, errors, trace ids."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from vitrine_runtime import metrics, tracing
from vitrine_runtime.errors import ConflictError, DomainError, NotFoundError

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]

_STATUS_BY_ERROR: dict[type[DomainError], int] = {NotFoundError: 404, ConflictError: 409}


def install_common_routes(app: FastAPI, readiness: ReadinessCheck) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        checks = await readiness()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> Response:
        status = next((s for t, s in _STATUS_BY_ERROR.items() if isinstance(exc, t)), 422)
        return JSONResponse({"error": exc.code, "message": str(exc)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> Response:
        details = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
            for e in exc.errors()
        ]
        message = "; ".join(f"{d['field'] or 'body'}: {d['message']}" for d in details)
        return JSONResponse(
            {"error": "invalid_request", "message": message, "details": details},
            status_code=422,
        )

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        trace_id = (
            tracing.trace_id_from_traceparent(request.headers.get("traceparent"))
            or tracing.new_trace_id()
        )
        token = tracing.set_correlation_id(trace_id)
        started = time.perf_counter()
        try:
            with structlog.contextvars.bound_contextvars(correlation_id=trace_id):
                response = await call_next(request)
        finally:
            tracing.reset_correlation_id(token)
        # Label by the route's template (/orders/{order_id}), never the raw path.
        route = getattr(request.scope.get("route"), "path", None) or "unmatched"
        if route not in {"/metrics", "/healthz", "/readyz"}:
            metrics.HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
            metrics.HTTP_REQUEST_SECONDS.labels(request.method, route).observe(
                time.perf_counter() - started
            )
        response.headers["traceparent"] = tracing.traceparent(trace_id)
        return response
