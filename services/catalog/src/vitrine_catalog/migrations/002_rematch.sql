-- Which embedding model's vectors of a track's crops are kept in the track-crops vector
-- collection, so a product added later can be matched against the track; NULL: none
-- (tracks judged before re-matching existed, or tagged ones). A startup job embeds the
-- crops of untagged tracks whose model differs from the running one.
ALTER TABLE video_tracks ADD COLUMN embedding_model text;

CREATE INDEX video_tracks_untagged_by_model ON video_tracks (embedding_model);
