-- The verifier's confidence that a track's best product is really on screen (MATCH_RULE=
-- verifier): what it was tagged or passed over on. NULL where the threshold rule judged.
ALTER TABLE video_tracks ADD COLUMN match_confidence real
    CHECK (match_confidence >= 0 AND match_confidence <= 1);
