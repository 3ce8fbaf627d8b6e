"""What the detector remembers of each video, and what it does when asked about it again.

A video is processed at most once: with consent, the first time consent is known to be
on. Redeliveries are caught earlier (by event id, in the consumer); this rule covers a
*new* event about the same video: a second upload notice, or consent switched on later.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    SKIPPED_NO_CONSENT = "skipped_no_consent"
    PROCESSED = "processed"
    FAILED = "failed"


class Step(StrEnum):
    PROCESS = "process"
    RECORD_NO_CONSENT = "record_no_consent"  # nothing detected, the outcome recorded
    CONSENT_WITHDRAWN = "consent_withdrawn"  # already done; the new consent is recorded
    ALREADY_DONE = "already_done"


@dataclass(frozen=True, slots=True)
class VideoRecord:
    video_id: str
    creator_id: str
    media_uri: str
    identify_products: bool
    outcome: Outcome
    last_event_id: uuid.UUID
    reason_code: str | None = None
    reason: str | None = None
    track_count: int = 0
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    frames_decoded: int = 0
    frames_sampled: int = 0
    fetch_s: float | None = None
    decode_s: float | None = None
    detect_s: float | None = None
    processing_s: float | None = None
    model: str | None = None


def next_step(existing: VideoRecord | None, identify_products: bool) -> Step:
    done = existing is not None and existing.outcome is not Outcome.SKIPPED_NO_CONSENT
    if not identify_products:
        return Step.CONSENT_WITHDRAWN if done else Step.RECORD_NO_CONSENT
    return Step.ALREADY_DONE if done else Step.PROCESS
