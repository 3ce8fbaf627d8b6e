-- How many crops each track was judged on: the fewer, the higher it must score to be
-- tagged (MATCH_SHORT_TRACK_PENALTY), so GET /videos/{id}/tracks can say what it needed.
-- NULL for tracks judged before: they are reported as full tracks.
ALTER TABLE video_tracks ADD COLUMN crops_judged integer CHECK (crops_judged >= 0);
