"""Correlation ids: one W3C trace id follows a flow from the HTTP request to the ledger.

The id arrives in a `traceparent` header (HTTP) or the envelope (Kafka), is bound to the
log context, and is stamped on every event the flow emits.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def new_trace_id() -> str:
    return secrets.token_hex(16)


def trace_id_from_traceparent(header: str | None) -> str | None:
    """The trace id of a W3C traceparent header, or None if absent or malformed."""
    if not header:
        return None
    match = _TRACEPARENT.match(header.strip().lower())
    if not match or match.group(1) == "0" * 32:
        return None
    return match.group(1)


def traceparent(trace_id: str) -> str:
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def current_correlation_id() -> str | None:
    return _correlation_id.get()


def set_correlation_id(value: str | None) -> object:
    return _correlation_id.set(value)


def reset_correlation_id(token: object) -> None:
    _correlation_id.reset(token)  # type: ignore[arg-type]
