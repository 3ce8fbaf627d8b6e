"""The detector's use case: a video (with consent) in, tracked objects or a failure out.

Everything a video produces is written in the caller's transaction: the `videos` row and
the events (through the outbox), so a crash part-way leaves nothing behind and the
redelivered event processes the video again from scratch. Crops go to the media store
first, under names that depend only on the video and the track, so a second run
overwrites the first run's crops instead of leaving strays.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

import asyncpg

from vitrine_detector import metrics
from vitrine_detector.adapters import repository as repo
from vitrine_detector.adapters.decoder import PyAVSource
from vitrine_detector.adapters.images import encode_jpeg
from vitrine_detector.domain.keys import crop_key, track_id
from vitrine_detector.domain.limits import FailureCode, VideoLimits, VideoRejected
from vitrine_detector.domain.videos import Outcome, Step, VideoRecord, next_step
from vitrine_detector.pipeline import (
    DetectedObject,
    FrameSource,
    ObjectDetector,
    PipelineParams,
    PipelineResult,
    VideoInfo,
    detect_objects,
)
from vitrine_runtime.logging import get_logger
from vitrine_runtime.media import MediaNotFoundError, MediaRefusedError, MediaStore
from vitrine_runtime.outbox import enqueue
from vitrine_schemas.envelope import Envelope, Event
from vitrine_schemas.events import (
    BoundingBox,
    CropRef,
    ObjectsDetected,
    VideoConsentChanged,
    VideoFailed,
    VideoUploaded,
)

log = get_logger(__name__)

EnvelopeFactory = Callable[[Event], Envelope[Event]]
SourceOpener = Callable[[bytes, VideoLimits], AbstractContextManager[FrameSource]]
VideoRequest = VideoUploaded | VideoConsentChanged


def open_with_pyav(
    threads: int, skip_non_reference: bool, skip_loop_filter: bool = False
) -> SourceOpener:
    def open_source(data: bytes, limits: VideoLimits) -> AbstractContextManager[FrameSource]:
        return PyAVSource(
            data,
            limits,
            threads=threads,
            skip_non_reference=skip_non_reference,
            skip_loop_filter=skip_loop_filter,
        )

    return open_source


@dataclass
class VideoDetector:
    media: MediaStore
    detector: ObjectDetector
    limits: VideoLimits
    params: PipelineParams
    envelope: EnvelopeFactory
    open_source: SourceOpener
    model_id: str = "unknown"

    async def handle(
        self, conn: asyncpg.Connection, event_id: uuid.UUID, video: VideoRequest
    ) -> Step:
        """Act on an upload or consent notice, in the caller's transaction."""
        existing = await repo.lock_video(conn, video.video_id)
        step = next_step(existing, video.identify_products)
        fresh = VideoRecord(
            video_id=video.video_id,
            creator_id=video.creator_id,
            media_uri=video.media_uri,
            identify_products=video.identify_products,
            outcome=Outcome.SKIPPED_NO_CONSENT,
            last_event_id=event_id,
        )
        if step is Step.RECORD_NO_CONSENT:
            await repo.save_video(conn, fresh)
            metrics.VIDEOS.labels(Outcome.SKIPPED_NO_CONSENT.value).inc()
        elif step is Step.ALREADY_DONE or step is Step.CONSENT_WITHDRAWN:
            assert existing is not None
            # The video is not processed again; its consent, as last told, is recorded.
            # Tags already published stay until the catalog learns of a withdrawal.
            if existing.identify_products != video.identify_products:
                await repo.save_video(
                    conn,
                    replace(
                        existing,
                        identify_products=video.identify_products,
                        last_event_id=event_id,
                    ),
                )
            metrics.VIDEOS.labels(step.value).inc()
        else:
            await self._process(conn, fresh)
        log.info("video_handled", video_id=video.video_id, step=step.value)
        return step

    async def _process(self, conn: asyncpg.Connection, record: VideoRecord) -> None:
        started = time.perf_counter()
        fetch_s = None
        try:
            data = await self._fetch(record.media_uri)
            fetch_s = time.perf_counter() - started
            run = await self._run(data)
        except VideoRejected as rejected:
            await self._fail(conn, record, rejected, fetch_s, time.perf_counter() - started)
            return
        result, info = run.result, run.info
        track_ids = [track_id(n) for n in range(len(result.objects))]
        crops = await self._store_crops(record.video_id, track_ids, result.objects)
        for tid, detected, refs in zip(track_ids, result.objects, crops, strict=True):
            await enqueue(conn, self.envelope(self._announcement(record, tid, detected, refs)))
        stats = result.stats
        elapsed = time.perf_counter() - started
        await repo.save_video(
            conn,
            replace(
                record,
                outcome=Outcome.PROCESSED,
                track_count=len(result.objects),
                duration_s=stats.last_frame_s,
                width=info.width,
                height=info.height,
                frames_decoded=stats.frames_decoded,
                frames_sampled=stats.frames_sampled,
                fetch_s=fetch_s,
                decode_s=stats.decode_s,
                detect_s=stats.detect_s,
                processing_s=elapsed,
                model=self.model_id,
            ),
        )
        metrics.VIDEOS.labels(Outcome.PROCESSED.value).inc()
        metrics.VIDEO_PROCESSING_SECONDS.observe(elapsed)
        metrics.VIDEO_SECONDS.inc(stats.last_frame_s or 0.0)
        metrics.TRACKS.labels("published").inc(len(result.objects))
        metrics.TRACKS.labels("dropped").inc(stats.tracks_dropped)
        log.info(
            "video_processed",
            video_id=record.video_id,
            tracks=len(result.objects),
            video_s=round(stats.last_frame_s or 0.0, 2),
            processing_s=round(elapsed, 3),
            frames_decoded=stats.frames_decoded,
            frames_sampled=stats.frames_sampled,
        )

    async def _fetch(self, uri: str) -> bytes:
        """The video's bytes, from the media store only; refusals become failures."""
        try:
            self.limits.check_size(await self.media.size(uri))
            return await self.media.get(uri, max_bytes=self.limits.max_bytes)
        except MediaRefusedError as exc:
            raise VideoRejected(FailureCode.OUTSIDE_STORE, str(exc)) from exc
        except MediaNotFoundError as exc:
            raise VideoRejected(FailureCode.NOT_FOUND, str(exc)) from exc

    async def _run(self, data: bytes) -> _Processed:
        cancel = threading.Event()

        def work() -> _Processed:
            with self.open_source(data, self.limits) as source:
                result = detect_objects(source, self.detector, self.params, self.limits, cancel)
                return _Processed(source.info, result)

        try:
            run = await asyncio.to_thread(work)
        except asyncio.CancelledError:
            cancel.set()  # the worker thread stops at its next frame
            raise
        stats = run.result.stats
        metrics.FRAMES.labels("decoded").inc(stats.frames_decoded)
        metrics.FRAMES.labels("sampled").inc(stats.frames_sampled)
        metrics.FRAMES.labels("inferred").inc(stats.frames_inferred)
        return run

    async def _store_crops(
        self, video_id: str, track_ids: list[str], objects: list[DetectedObject]
    ) -> list[list[CropRef]]:
        def encode() -> list[list[bytes]]:
            return [[encode_jpeg(c.image) for c in detected.crops] for detected in objects]

        encoded = await asyncio.to_thread(encode)
        refs: list[list[CropRef]] = []
        for tid, detected, blobs in zip(track_ids, objects, encoded, strict=True):
            track_refs = []
            for n, (crop, blob) in enumerate(zip(detected.crops, blobs, strict=True)):
                uri = await self.media.put(crop_key(video_id, tid, n), blob, "image/jpeg")
                track_refs.append(
                    CropRef(uri=uri, at_ms=_ms(crop.t), quality=round(crop.quality, 4))
                )
            refs.append(track_refs)
        return refs

    @staticmethod
    def _announcement(
        record: VideoRecord, tid: str, detected: DetectedObject, crops: list[CropRef]
    ) -> ObjectsDetected:
        track = detected.track
        return ObjectsDetected(
            video_id=record.video_id,
            creator_id=record.creator_id,
            track_id=tid,
            label=track.label,
            confidence=round(min(1.0, max(0.0, track.confidence)), 4),
            first_seen_ms=_ms(track.first_t),
            last_seen_ms=_ms(track.last_t),
            boxes=[
                BoundingBox(
                    at_ms=_ms(o.t),
                    x=round(o.box.x1, 4),
                    y=round(o.box.y1, 4),
                    width=round(o.box.width, 4),
                    height=round(o.box.height, 4),
                )
                for o in detected.boxes
            ],
            crops=crops,
        )

    async def _fail(
        self,
        conn: asyncpg.Connection,
        record: VideoRecord,
        rejected: VideoRejected,
        fetch_s: float | None,
        elapsed: float,
    ) -> None:
        reason = rejected.reason[:2000]
        await repo.save_video(
            conn,
            replace(
                record,
                outcome=Outcome.FAILED,
                reason_code=rejected.code.value,
                reason=reason,
                fetch_s=fetch_s,
                processing_s=elapsed,
                model=self.model_id,
            ),
        )
        await enqueue(
            conn,
            self.envelope(
                VideoFailed(
                    video_id=record.video_id,
                    creator_id=record.creator_id,
                    reason_code=rejected.code.value,
                    reason=reason,
                )
            ),
        )
        metrics.VIDEOS.labels(Outcome.FAILED.value).inc()
        metrics.VIDEO_FAILURES.labels(rejected.code.value).inc()
        log.warning(
            "video_failed", video_id=record.video_id, reason_code=rejected.code, reason=reason
        )


@dataclass(frozen=True, slots=True)
class _Processed:
    info: VideoInfo
    result: PipelineResult


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
