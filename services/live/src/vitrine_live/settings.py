"""Live's settings: the shared service settings, under its own name."""

from __future__ import annotations

from pydantic import Field

from vitrine_runtime.settings import ServiceSettings


class LiveSettings(ServiceSettings):
    service_name: str = "live"
    max_sessions_listed: int = Field(100, ge=1, description="cap on GET /sessions?limit=")
