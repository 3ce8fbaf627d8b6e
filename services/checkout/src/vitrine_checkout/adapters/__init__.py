"""Adapters: PostgreSQL through asyncpg."""
