CREATE TABLE shops (
    shop_id     text PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) > 0),
    kind        text NOT NULL CHECK (kind IN ('third_party', 'first_party')),
    seller_id   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products (
    product_id      text PRIMARY KEY,
    shop_id         text NOT NULL REFERENCES shops (shop_id),
    title           text NOT NULL CHECK (length(title) > 0),
    price_minor     bigint NOT NULL CHECK (price_minor > 0),
    currency        char(3) NOT NULL,
    stock           integer NOT NULL CHECK (stock >= 0),
    stock_version   integer NOT NULL DEFAULT 1,
    commission_bps  integer NOT NULL CHECK (commission_bps BETWEEN 100 AND 8000),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_by_shop ON products (shop_id);

CREATE TABLE product_images (
    image_id        uuid PRIMARY KEY,
    product_id      text NOT NULL REFERENCES products (product_id),
    media_uri       text NOT NULL,
    embedding_model text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX product_images_by_product ON product_images (product_id);

-- Shoppable tags: one per tracked object that matched a product.
CREATE TABLE video_tags (
    video_id       text NOT NULL,
    track_id       text NOT NULL,
    product_id     text NOT NULL REFERENCES products (product_id),
    shop_id        text NOT NULL,
    creator_id     text NOT NULL,
    score          double precision NOT NULL,
    first_seen_ms  integer NOT NULL,
    last_seen_ms   integer NOT NULL,
    matched_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (video_id, track_id)
);

-- Tracks seen, matched or not, so a new product can later be matched against them.
CREATE TABLE video_tracks (
    video_id       text NOT NULL,
    track_id       text NOT NULL,
    creator_id     text NOT NULL,
    label          text NOT NULL,
    first_seen_ms  integer NOT NULL,
    last_seen_ms   integer NOT NULL,
    crop_uris      text[] NOT NULL,
    best_score     double precision,
    seen_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (video_id, track_id)
);
