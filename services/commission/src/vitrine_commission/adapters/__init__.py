"""Adapters: the ledger's PostgreSQL storage."""
