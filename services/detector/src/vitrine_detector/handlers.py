"""Event handlers of the detector (broker adapter): each runs once per event, in a transaction."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from vitrine_detector.application import VideoDetector
from vitrine_runtime.consumer import EventConsumer
from vitrine_schemas.envelope import Envelope
from vitrine_schemas.events import VideoConsentChanged, VideoUploaded


def register(consumer: EventConsumer, detector: Callable[[], VideoDetector]) -> None:
    """Register handlers; `detector` gives the started detector when an event arrives."""

    @consumer.on(VideoUploaded)
    async def on_video_uploaded(
        envelope: Envelope[VideoUploaded], conn: asyncpg.Connection
    ) -> None:
        await detector().handle(conn, envelope.event_id, envelope.data)

    @consumer.on(VideoConsentChanged)
    async def on_video_consent_changed(
        envelope: Envelope[VideoConsentChanged], conn: asyncpg.Connection
    ) -> None:
        await detector().handle(conn, envelope.event_id, envelope.data)
