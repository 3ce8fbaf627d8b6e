-- Checkout's own copy of the catalog (from catalog.product_upserted): what can be sold, at
-- what price and rate, and how many units are left. `version` gates every field;
-- `stock_version` gates `available` alone, so a title or price edit never undoes sales.
CREATE TABLE products (
    product_id      text PRIMARY KEY,
    shop_id         text NOT NULL,
    seller_id       text NOT NULL,
    shop_kind       text NOT NULL,
    title           text NOT NULL,
    price_minor     bigint NOT NULL CHECK (price_minor >= 0),
    currency        text NOT NULL,
    commission_bps  integer NOT NULL,
    status          text NOT NULL,
    version         bigint NOT NULL,
    available       bigint NOT NULL CHECK (available >= 0),
    stock_version   bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Live sessions as the live service announces them (live.* events): a live order is
-- accepted only for a session that is live here.
CREATE TABLE live_sessions (
    session_id  text PRIMARY KEY,
    creator_id  text NOT NULL,
    title       text NOT NULL DEFAULT '',
    status      text NOT NULL CHECK (status IN ('live', 'ended')),
    started_at  timestamptz,
    ended_at    timestamptz
);

-- One row per product ever pinned in a session; `changed_at` (the event's own time)
-- keeps a late pin from overriding a newer unpin.
CREATE TABLE live_session_pins (
    session_id  text NOT NULL,
    product_id  text NOT NULL,
    pinned      boolean NOT NULL,
    changed_at  timestamptz NOT NULL,
    PRIMARY KEY (session_id, product_id)
);

-- Orders are placed paid (payment is out of scope); amounts in minor units of `currency`.
CREATE TABLE orders (
    order_id          text PRIMARY KEY,
    buyer_id          text NOT NULL,
    shop_id           text NOT NULL,
    seller_id         text NOT NULL,
    shop_kind         text NOT NULL,
    currency          text NOT NULL,
    total_minor       bigint NOT NULL CHECK (total_minor >= 0),
    refunded_minor    bigint NOT NULL DEFAULT 0,
    platform_fee_bps  integer NOT NULL,
    attribution_source text NOT NULL,
    creator_id        text,
    video_id          text,
    live_session_id   text,
    placed_at         timestamptz NOT NULL,
    CHECK (refunded_minor BETWEEN 0 AND total_minor)
);
CREATE INDEX orders_by_buyer ON orders (buyer_id, placed_at DESC);

CREATE TABLE order_lines (
    order_id          text NOT NULL REFERENCES orders ON DELETE CASCADE,
    line_no           integer NOT NULL,
    product_id        text NOT NULL,
    title             text NOT NULL,
    quantity          integer NOT NULL CHECK (quantity > 0),
    unit_price_minor  bigint NOT NULL,
    commission_bps    integer NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE refunds (
    refund_id             text PRIMARY KEY,
    order_id              text NOT NULL REFERENCES orders ON DELETE CASCADE,
    amount_minor          bigint NOT NULL CHECK (amount_minor > 0),
    refunded_total_minor  bigint NOT NULL,
    reason                text NOT NULL DEFAULT '',
    refunded_at           timestamptz NOT NULL
);
CREATE INDEX refunds_by_order ON refunds (order_id, refunded_at);

-- Idempotency-Key of each write, with a hash of its request: a retry with the same key and
-- request gets the same resource back; the same key with another request is refused.
-- Written in the transaction of the write, so a failed request leaves no key behind.
CREATE TABLE idempotency_keys (
    operation     text NOT NULL,
    key           text NOT NULL,
    request_hash  text NOT NULL,
    resource_id   text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (operation, key)
);
