-- Live's copy of the catalog (catalog.product_upserted): only what pinning needs to know.
CREATE TABLE products (
    product_id  text PRIMARY KEY,
    shop_id     text NOT NULL,
    title       text NOT NULL,
    price_minor bigint NOT NULL,
    currency    text NOT NULL,
    status      text NOT NULL,
    version     bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    session_id  text PRIMARY KEY,
    creator_id  text NOT NULL,
    title       text NOT NULL,
    status      text NOT NULL CHECK (status IN ('live', 'ended')),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    CHECK ((status = 'ended') = (ended_at IS NOT NULL))
);
-- A creator streams one session at a time; the index makes that hold under races too.
CREATE UNIQUE INDEX one_live_session_per_creator ON sessions (creator_id) WHERE status = 'live';
CREATE INDEX sessions_by_creator ON sessions (creator_id, started_at DESC);

-- Products pinned now; unpinning deletes the row (the event log keeps the history).
CREATE TABLE session_pins (
    session_id  text NOT NULL REFERENCES sessions ON DELETE CASCADE,
    product_id  text NOT NULL,
    pinned_at   timestamptz NOT NULL,
    PRIMARY KEY (session_id, product_id)
);

-- Orders attributed to a session, so a later refund of the order can find its session;
-- refunded_minor mirrors the cumulative refunded_total of the latest order.refunded.
CREATE TABLE attributed_orders (
    order_id        text PRIMARY KEY,
    session_id      text NOT NULL REFERENCES sessions ON DELETE CASCADE,
    currency        text NOT NULL,
    total_minor     bigint NOT NULL,
    refunded_minor  bigint NOT NULL DEFAULT 0,
    placed_at       timestamptz NOT NULL,
    CHECK (refunded_minor BETWEEN 0 AND total_minor)
);
CREATE INDEX attributed_orders_by_session ON attributed_orders (session_id);

-- Sales per session and currency (amounts never mix currencies), in minor units.
CREATE TABLE session_sales (
    session_id      text NOT NULL REFERENCES sessions ON DELETE CASCADE,
    currency        text NOT NULL,
    orders          integer NOT NULL DEFAULT 0,
    gross_minor     bigint NOT NULL DEFAULT 0,
    refunded_minor  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, currency)
);
