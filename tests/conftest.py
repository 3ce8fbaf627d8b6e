"""Cross-service tests: one embedded platform for the whole session, real parts only.

The broker (Tansu, Kafka protocol), PostgreSQL and the embedded Qdrant engine are real,
and so are the services, each in its own process. Set KAFKA_BOOTSTRAP_SERVERS and
DATABASE_URL to run the same tests against servers of your own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from vitrine_runtime.media import LocalMediaStore
from vitrine_stack.client import PlatformClient, Seller
from vitrine_stack.platform import EmbeddedPlatform
from vitrine_stack.samples import SAMPLE_PRODUCTS, SampleProduct


@pytest.fixture(scope="session")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedPlatform]:
    async with EmbeddedPlatform(tmp_path_factory.mktemp("platform"), fresh=True) as running:
        yield running


@pytest.fixture(scope="session")
async def client(platform: EmbeddedPlatform) -> AsyncIterator[PlatformClient]:
    urls = {name: platform.service_url(name) for name in platform.service_names}
    async with PlatformClient(urls, platform.bootstrap_servers) as connected:
        yield connected


@pytest.fixture(scope="session")
def media(platform: EmbeddedPlatform) -> LocalMediaStore:
    return LocalMediaStore(platform.media_root)


@pytest.fixture(scope="session")
def seller(client: PlatformClient) -> Seller:
    return Seller(client)


@pytest.fixture(scope="session")
def samples() -> dict[str, SampleProduct]:
    return {sample.key: sample for sample in SAMPLE_PRODUCTS}
