"""The detector behind the runtime's consumer, on a real PostgreSQL schema and a real
media store: consent, hostile URIs, broken files and limits all end in a recorded
outcome, never in a crash or a dead letter."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from detector_videos import (
    ColourDetector,
    Harness,
    SpyStore,
    build_harness,
    consent_changed,
    new_video_id,
    one_square_video,
    uploaded,
)

from vitrine_detector.settings import DetectorSettings
from vitrine_runtime.consumer import Outcome
from vitrine_runtime.db import Database
from vitrine_schemas.envelope import Envelope


@pytest.fixture(scope="module")
def square_video() -> bytes:
    video: bytes = one_square_video()[0]
    return video


@pytest.fixture(scope="module")
def square_video_faststart() -> bytes:
    video: bytes = one_square_video(faststart=True)[0]
    return video


async def test_a_video_with_consent_becomes_one_objects_detected_per_track(
    harness: Harness, store: SpyStore, square_video: bytes
) -> None:
    uri = await store.put("videos/v1.mp4", square_video, "video/mp4")
    video_id = new_video_id()

    assert await harness.deliver(uploaded(video_id, uri)) is Outcome.HANDLED

    (track,) = await harness.events("objects.detected")
    assert track["video_id"] == video_id
    assert track["creator_id"] == "creator-1"
    assert track["track_id"] == "t000"
    assert track["label"] == "magenta"
    assert 1000 <= track["first_seen_ms"] <= 1200
    assert 3900 <= track["last_seen_ms"] < 4500
    assert len(track["boxes"]) >= 6  # sampled at least twice a second
    assert all(0 <= b["x"] <= 1 and 0 < b["width"] <= 1 for b in track["boxes"])
    assert 2 <= len(track["crops"]) <= DetectorSettings().crops_per_track
    for crop in track["crops"]:
        assert crop["uri"].startswith(f"media://crops/{video_id}/t000-")
        assert (await store.get(crop["uri"]))[:3] == b"\xff\xd8\xff"  # a JPEG
        assert track["first_seen_ms"] <= crop["at_ms"] <= track["last_seen_ms"]
    row = await harness.video(video_id)
    assert row is not None
    assert row["outcome"] == "processed"
    assert row["track_count"] == 1
    assert row["frames_sampled"] < row["frames_decoded"]
    assert row["processing_s"] > 0
    assert row["model"] == "colour-test"
    assert harness.dead_letters.sent == []


async def test_redelivery_and_repeated_notices_do_not_process_twice(
    harness: Harness, store: SpyStore, square_video: bytes
) -> None:
    uri = await store.put("videos/v2.mp4", square_video, "video/mp4")
    video_id = new_video_id()
    first = Envelope.wrap(uploaded(video_id, uri), producer="test")

    assert await harness.deliver(first) is Outcome.HANDLED
    assert await harness.deliver(first) is Outcome.DUPLICATE
    # A new notice about a processed video (another upload event, consent re-sent).
    assert await harness.deliver(uploaded(video_id, uri)) is Outcome.HANDLED
    assert await harness.deliver(consent_changed(video_id, uri)) is Outcome.HANDLED

    assert len(await harness.events("objects.detected")) == 1
    assert store.reads == [uri]


async def test_consent_off_detects_nothing_and_records_the_outcome(
    harness: Harness, store: SpyStore, square_video: bytes
) -> None:
    uri = await store.put("videos/v3.mp4", square_video, "video/mp4")
    video_id = new_video_id()

    assert await harness.deliver(uploaded(video_id, uri, consent=False)) is Outcome.HANDLED

    assert await harness.events() == []
    assert store.reads == []  # the video was not even fetched
    assert harness.detector.calls == []
    row = await harness.video(video_id)
    assert row is not None
    assert row["outcome"] == "skipped_no_consent"
    assert row["identify_products"] is False


@pytest.mark.parametrize("how", ["consent_changed", "uploaded_again"])
async def test_consent_switched_on_later_processes_the_video(
    harness: Harness, store: SpyStore, square_video: bytes, how: str
) -> None:
    uri = await store.put("videos/v4.mp4", square_video, "video/mp4")
    video_id = new_video_id()
    await harness.deliver(uploaded(video_id, uri, consent=False))

    later = consent_changed(video_id, uri) if how == "consent_changed" else uploaded(video_id, uri)
    assert await harness.deliver(later) is Outcome.HANDLED

    assert [e["video_id"] for e in await harness.events("objects.detected")] == [video_id]
    row = await harness.video(video_id)
    assert row is not None
    assert row["outcome"] == "processed"
    assert row["identify_products"]


async def test_consent_withdrawn_after_processing_is_recorded(
    harness: Harness, store: SpyStore, square_video: bytes
) -> None:
    uri = await store.put("videos/v5.mp4", square_video, "video/mp4")
    video_id = new_video_id()
    await harness.deliver(uploaded(video_id, uri))

    await harness.deliver(consent_changed(video_id, uri, consent=False))

    row = await harness.video(video_id)
    assert row is not None
    assert row["outcome"] == "processed"
    assert row["identify_products"] is False
    assert len(await harness.events("objects.detected")) == 1


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:
        _Recorder.requests.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    """A server on 127.0.0.1 that records any request made to it."""
    _Recorder.requests = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_hostile_uris_fail_as_outside_store_and_nothing_is_fetched(
    harness: Harness, store: SpyStore, square_video: bytes, tmp_path: Path, http_server: str
) -> None:
    # A perfectly good video just outside the store: had it been read, it would have
    # produced a track.
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(square_video)
    (store.root / "videos").mkdir(parents=True, exist_ok=True)
    (store.root / "videos" / "link.mp4").symlink_to(secret)
    hostile = [
        f"http://{http_server}/secret.mp4",
        f"file://{secret}",
        "file:///etc/passwd",
        "media://../secret.mp4",
        "media://videos/../../secret.mp4",
        "../secret.mp4",
        str(secret),
        f"media://{http_server}/secret.mp4",
        "media://videos/link.mp4",
        "s3://other-bucket/secret.mp4",
    ]
    ids = []
    for uri in hostile:
        ids.append(new_video_id())
        assert await harness.deliver(uploaded(ids[-1], uri)) is Outcome.HANDLED

    failures = await harness.events("video.failed")
    assert [f["video_id"] for f in failures] == ids
    assert {f["reason_code"] for f in failures} == {"outside_store"}
    assert await harness.events("objects.detected") == []
    assert store.reads == []
    assert _Recorder.requests == []
    assert harness.detector.calls == []
    assert harness.dead_letters.sent == []
    for video_id in ids:
        row = await harness.video(video_id)
        assert row is not None
        assert row["outcome"] == "failed"


async def test_broken_files_fail_with_a_reason_and_consuming_goes_on(
    harness: Harness, store: SpyStore, square_video: bytes, square_video_faststart: bytes
) -> None:
    broken = {
        "truncated": square_video[: len(square_video) // 2],  # index (moov) at the end, lost
        "truncated-faststart": square_video_faststart[: len(square_video_faststart) // 2],
        "text": b"this is a text file, renamed to .mp4\n" * 20,
        "empty": b"",
        "garbage-after-header": square_video[:64] + bytes(range(256)) * 40,
    }
    expected = {
        "truncated": "corrupt",
        "truncated-faststart": "corrupt",
        "text": "unsupported",
        "empty": "unsupported",
        "garbage-after-header": "corrupt",
    }
    ids = {}
    for name, blob in broken.items():
        uri = await store.put(f"videos/{name}.mp4", blob, "video/mp4")
        ids[name] = new_video_id()
        assert await harness.deliver(uploaded(ids[name], uri)) is Outcome.HANDLED
    good = await store.put("videos/good.mp4", square_video, "video/mp4")
    assert await harness.deliver(uploaded(new_video_id(), good)) is Outcome.HANDLED

    failures = {f["video_id"]: f for f in await harness.events("video.failed")}
    for name, video_id in ids.items():
        assert failures[video_id]["reason_code"] == expected[name], name
        assert failures[video_id]["reason"]
    assert len(await harness.events("objects.detected")) == 1  # the good one, after them
    assert harness.dead_letters.sent == []


@pytest.mark.parametrize(
    ("limit", "code"),
    [
        ({"video_max_bytes": 10_000}, "too_large"),
        ({"video_max_duration_s": 3.0}, "too_long"),
        ({"video_max_pixels": 320 * 240}, "resolution_too_high"),
    ],
)
async def test_limits_fail_the_video_with_the_limit_named(
    db: Database, store: SpyStore, square_video: bytes, limit: dict[str, float], code: str
) -> None:
    harness = build_harness(db, store, ColourDetector(), **limit)
    uri = await store.put("videos/big.mp4", square_video, "video/mp4")
    video_id = new_video_id()

    assert await harness.deliver(uploaded(video_id, uri)) is Outcome.HANDLED

    (failure,) = await harness.events("video.failed")
    assert failure["reason_code"] == code
    assert await harness.events("objects.detected") == []
    if code == "too_large":
        assert store.reads == []  # refused on its size, before reading it
    row = await harness.video(video_id)
    assert row is not None
    assert row["reason_code"] == code


async def test_a_missing_video_fails_as_not_found(harness: Harness) -> None:
    video_id = new_video_id()
    await harness.deliver(uploaded(video_id, "media://videos/never-uploaded.mp4"))

    (failure,) = await harness.events("video.failed")
    assert failure["reason_code"] == "not_found"
