"""Database start-up: replicas of one service connect at the same moment."""

from __future__ import annotations

import asyncio
import uuid

from vitrine_runtime.db import Database


async def test_replicas_starting_together_all_get_the_schema(database_url: str) -> None:
    for _ in range(5):
        schema = f"t_{uuid.uuid4().hex[:12]}"
        dbs = await asyncio.gather(
            *(Database.connect(database_url, schema, pool_size=1) for _ in range(4))
        )
        try:
            assert {await db.pool.fetchval("SELECT current_schema()") for db in dbs} == {schema}
        finally:
            async with dbs[0].pool.acquire() as conn:
                await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            for db in dbs:
                await db.close()
