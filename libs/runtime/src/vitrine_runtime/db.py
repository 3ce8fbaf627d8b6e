"""PostgreSQL through asyncpg: a pool bound to the service's own schema, and migrations.

Each service owns one schema (catalog, checkout, ...) in a shared or its own database.
Migrations are plain SQL files `NNN_name.sql` shipped inside the service package; the
runtime's own tables (outbox, inbox) are migrated first, under the same schema.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

import asyncpg

from vitrine_runtime.logging import get_logger

log = get_logger(__name__)

RUNTIME_MIGRATIONS = "vitrine_runtime.migrations"


async def _init_connection(conn: asyncpg.Connection) -> None:
    for pg_type in ("json", "jsonb"):
        await conn.set_type_codec(
            pg_type, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


class Database:
    def __init__(self, pool: asyncpg.Pool, url: str, schema: str) -> None:
        self.pool = pool
        self.url = url
        self.schema = schema

    @classmethod
    async def connect(cls, url: str, schema: str, *, pool_size: int = 10) -> Database:
        if not schema.isidentifier():
            raise ValueError(f"schema name must be an identifier, got {schema!r}")
        # Create the schema before the pool pins search_path to it.
        conn = await asyncpg.connect(url)
        try:
            # IF NOT EXISTS does not hold against a concurrent CREATE: replicas starting
            # at the same moment race here, and the loser sees the winner's schema.
            with contextlib.suppress(asyncpg.UniqueViolationError, asyncpg.DuplicateSchemaError):
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(
            url,
            min_size=1,
            max_size=pool_size,
            init=_init_connection,
            server_settings={"search_path": schema, "application_name": f"vitrine-{schema}"},
        )
        return cls(pool, url, schema)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def ping(self) -> bool:
        try:
            return bool(await self.pool.fetchval("SELECT 1") == 1)
        except (OSError, asyncpg.PostgresError):
            return False

    async def migrate(self, *packages: str) -> list[str]:
        """Apply the SQL files of each package in order; each file once, under a lock."""
        applied: list[str] = []
        async with self.pool.acquire() as conn:
            # One migrator at a time across replicas; the key is per schema.
            await conn.execute("SELECT pg_advisory_lock(hashtext($1))", self.schema)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
                for package in (RUNTIME_MIGRATIONS, *packages):
                    for name, sql in _migration_files(package):
                        key = f"{package}:{name}"
                        if key in done:
                            continue
                        async with conn.transaction():
                            await conn.execute(sql)
                            await conn.execute(
                                "INSERT INTO schema_migrations (name) VALUES ($1)", key
                            )
                        applied.append(key)
                        log.info("migration_applied", migration=key, schema=self.schema)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self.schema)
        return applied


def _migration_files(package: str) -> list[tuple[str, str]]:
    root = resources.files(package)
    return sorted(
        (entry.name, entry.read_text()) for entry in root.iterdir() if entry.name.endswith(".sql")
    )
