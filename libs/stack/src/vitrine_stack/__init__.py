"""Vitrine on one machine without Docker: Tansu, PostgreSQL and the services as children."""

from vitrine_stack.broker import BrokerError, TansuBroker
from vitrine_stack.platform import DEFAULT_SERVICES, EmbeddedPlatform, PlatformError
from vitrine_stack.postgres import EmbeddedPostgres, PostgresError
from vitrine_stack.supervisor import (
    ChildProcess,
    ManagedProcess,
    ServiceFailed,
    ServiceSpec,
    Supervisor,
    free_port,
)

__all__ = [
    "DEFAULT_SERVICES",
    "BrokerError",
    "ChildProcess",
    "EmbeddedPlatform",
    "EmbeddedPostgres",
    "ManagedProcess",
    "PlatformError",
    "PostgresError",
    "ServiceFailed",
    "ServiceSpec",
    "Supervisor",
    "TansuBroker",
    "free_port",
]
