"""HTTP API of the detector: what became of a video (for operators and tests)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from vitrine_detector.adapters import repository as repo
from vitrine_runtime.errors import NotFoundError
from vitrine_runtime.service import ServiceRuntime

router = APIRouter()


class VideoOut(BaseModel):
    video_id: str
    creator_id: str
    identify_products: bool
    outcome: str
    reason_code: str | None
    reason: str | None
    track_count: int
    duration_s: float | None
    width: int | None
    height: int | None
    frames_decoded: int
    frames_sampled: int
    processing_s: float | None
    model: str | None


@router.get("/videos/{video_id}", response_model=VideoOut)
async def video(video_id: str, request: Request) -> VideoOut:
    runtime: ServiceRuntime = request.app.state.runtime
    async with runtime.db.pool.acquire() as conn:
        record = await repo.get_video(conn, video_id)
    if record is None:
        raise NotFoundError(f"the detector has not seen video {video_id}")
    return VideoOut(
        video_id=record.video_id,
        creator_id=record.creator_id,
        identify_products=record.identify_products,
        outcome=record.outcome.value,
        reason_code=record.reason_code,
        reason=record.reason,
        track_count=record.track_count,
        duration_s=record.duration_s,
        width=record.width,
        height=record.height,
        frames_decoded=record.frames_decoded,
        frames_sampled=record.frames_sampled,
        processing_s=record.processing_s,
        model=record.model,
    )
