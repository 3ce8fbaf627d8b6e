"""Live's domain errors; the runtime maps the base classes to 404/409/422."""

from __future__ import annotations

from vitrine_runtime.errors import ConflictError


class SessionEndedError(ConflictError):
    code = "session_ended"


class CreatorAlreadyLiveError(ConflictError):
    code = "creator_already_live"


class ProductUnavailableError(ConflictError):
    code = "product_unavailable"
