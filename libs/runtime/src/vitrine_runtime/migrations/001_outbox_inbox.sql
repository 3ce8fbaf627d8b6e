-- Transactional outbox: events written in the same transaction as the change they
-- describe, published to Kafka by the relay, so nothing is announced that did not happen
-- and nothing that happened goes unannounced.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    topic         text NOT NULL,
    key           text NOT NULL,
    event_type    text NOT NULL,
    payload       bytea NOT NULL,
    headers       jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Inbox: one row per event a consumer has applied, written in the same transaction as the
-- effect. A redelivered event finds its row and is skipped.
CREATE TABLE processed_events (
    consumer      text NOT NULL,
    event_id      uuid NOT NULL,
    event_type    text NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
