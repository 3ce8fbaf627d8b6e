-- The matcher's best guess for every judged track, tagged or not, and how far it led the
-- runner-up: why a track was not tagged (GET /videos/{id}/tracks), and the figures the
-- score threshold and margin are calibrated on.
ALTER TABLE video_tracks ADD COLUMN best_product_id text, ADD COLUMN runner_up_score double precision;
