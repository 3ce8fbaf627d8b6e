"""Fixtures of the commission tests: a database with the ledger's schema migrated."""

from __future__ import annotations

import pytest

from vitrine_commission.app import MIGRATIONS
from vitrine_runtime.db import Database


@pytest.fixture
async def ledger_db(database: Database) -> Database:
    """A fresh schema with the runtime's and the ledger's migrations applied."""
    await database.migrate(MIGRATIONS)
    return database
