"""The HTTP face every service shares: health, readiness, metrics, errors, trace ids."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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

    app.add_middleware(ObserveMiddleware)


_UNOBSERVED_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})


class ObserveMiddleware:
    """Trace id, request metrics and the traceparent response header, as plain ASGI.

    Starlette's BaseHTTPMiddleware (`@app.middleware`) runs each request through a task
    group and memory streams; on checkout that was a large share of the HTTP stack's CPU.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        traceparent_in: str | None = None
        for name, value in scope["headers"]:
            if name == b"traceparent":
                traceparent_in = value.decode("latin-1")
                break
        trace_id = tracing.trace_id_from_traceparent(traceparent_in) or tracing.new_trace_id()
        status = 500  # what the client gets if the app raises before it responds

        async def send_with_trace(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["traceparent"] = tracing.traceparent(trace_id)
            await send(message)

        token = tracing.set_correlation_id(trace_id)
        started = time.perf_counter()
        try:
            with structlog.contextvars.bound_contextvars(correlation_id=trace_id):
                await self.app(scope, receive, send_with_trace)
        finally:
            tracing.reset_correlation_id(token)
            # Label by the route's template (/orders/{order_id}), never the raw path; the
            # router sets it on the scope it was handed.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            if route not in _UNOBSERVED_ROUTES:
                method = scope["method"]
                metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
                metrics.HTTP_REQUEST_SECONDS.labels(method, route).observe(
                    time.perf_counter() - started
                )
