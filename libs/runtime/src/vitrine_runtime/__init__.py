"""Plumbing every Vitrine service shares: settings, logs, metrics, Kafka, Postgres,
outbox relay, idempotent consumption, dead letters and the HTTP face."""
