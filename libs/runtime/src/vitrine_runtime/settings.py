"""Settings every service shares, read from the environment in one place.

A service subclasses `ServiceSettings` for its own knobs. Names are plain environment
variables (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL, ...) so that a Kubernetes ConfigMap,
docker-compose and the embedded platform all set them the same way.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    service_name: str = Field(description="name in logs, metrics, consumer groups")
    http_host: str = "0.0.0.0"  # noqa: S104 - a service in a pod listens on all interfaces
    http_port: int = Field(8000, ge=0, le=65535)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_client_id_suffix: str = Field("", description="appended to client ids (pod name)")

    database_url: str = "postgresql://postgres@127.0.0.1:5432/vitrine"
    database_schema: str | None = Field(
        None, description="Postgres schema this service owns; defaults to the service name"
    )
    database_pool_size: int = Field(10, ge=1)

    media_root: str = Field("./.vitrine/media", description="local media store folder")
    media_s3_endpoint: str | None = Field(None, description="S3 endpoint; set to use S3")
    media_s3_bucket: str = "vitrine-media"
    media_s3_region: str = "us-east-1"
    media_s3_access_key: str | None = None
    media_s3_secret_key: str | None = None

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    consumer_max_attempts: int = Field(
        5, ge=1, description="tries of a failing handler before the event is dead-lettered"
    )
    consumer_retry_backoff_s: float = Field(0.2, gt=0)
    outbox_poll_interval_s: float = Field(0.5, gt=0)
    outbox_batch_size: int = Field(500, ge=1)

    @property
    def schema_name(self) -> str:
        return self.database_schema or self.service_name.replace("-", "_")
