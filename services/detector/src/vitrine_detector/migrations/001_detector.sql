-- One row per video the detector was asked about, with what became of it.
CREATE TABLE videos (
    video_id           text PRIMARY KEY,
    creator_id         text NOT NULL,
    media_uri          text NOT NULL,
    identify_products  boolean NOT NULL,
    outcome            text NOT NULL
                       CHECK (outcome IN ('skipped_no_consent', 'processed', 'failed')),
    reason_code        text,
    reason             text,
    track_count        integer NOT NULL DEFAULT 0 CHECK (track_count >= 0),
    duration_s         double precision,
    width              integer,
    height             integer,
    frames_decoded     integer NOT NULL DEFAULT 0,
    frames_sampled     integer NOT NULL DEFAULT 0,
    fetch_s            double precision,
    decode_s           double precision,
    detect_s           double precision,
    processing_s       double precision,
    model              text,
    last_event_id      uuid NOT NULL,
    first_seen_at      timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((outcome = 'failed') = (reason_code IS NOT NULL))
);
CREATE INDEX videos_by_outcome ON videos (outcome, updated_at);
