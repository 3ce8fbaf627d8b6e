"""SQL for the detector's `videos` table (asyncpg, the service's own schema)."""

from __future__ import annotations

from dataclasses import asdict, fields

import asyncpg

from vitrine_detector.domain.videos import Outcome, VideoRecord

_COLUMNS = [f.name for f in fields(VideoRecord)]


def _record(row: asyncpg.Record) -> VideoRecord:
    values = {name: row[name] for name in _COLUMNS}
    values["outcome"] = Outcome(values["outcome"])
    return VideoRecord(**values)


async def lock_video(conn: asyncpg.Connection, video_id: str) -> VideoRecord | None:
    """The video's row, locked until the caller's transaction ends (None: never seen)."""
    row = await conn.fetchrow("SELECT * FROM videos WHERE video_id = $1 FOR UPDATE", video_id)
    return _record(row) if row else None


async def get_video(conn: asyncpg.Connection, video_id: str) -> VideoRecord | None:
    row = await conn.fetchrow("SELECT * FROM videos WHERE video_id = $1", video_id)
    return _record(row) if row else None


async def save_video(conn: asyncpg.Connection, record: VideoRecord) -> None:
    values = asdict(record)
    values["outcome"] = record.outcome.value
    placeholders = ", ".join(f"${n}" for n in range(1, len(_COLUMNS) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS if c != "video_id")
    await conn.execute(
        f"INSERT INTO videos ({', '.join(_COLUMNS)}) VALUES ({placeholders})"
        f" ON CONFLICT (video_id) DO UPDATE SET {updates}, updated_at = now()",
        *(values[c] for c in _COLUMNS),
    )
