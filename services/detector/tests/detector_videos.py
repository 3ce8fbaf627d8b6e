"""Videos made in tests (PyAV, H.264/VP9), a colour detector, and a consumer harness.

The colour detector is the stand-in for YOLO in these tests: it finds saturated squares
in the *decoded* pixels, so timing, sampling and tracking are proven on what the decoder
really produced, not on a script that knows the answer.
"""

from __future__ import annotations

import functools
import json
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt
from scipy import ndimage
from skimage import data as photos
from skimage.transform import resize

from vitrine_detector.application import VideoDetector, open_with_pyav
from vitrine_detector.domain.boxes import Box
from vitrine_detector.domain.tracking import Detection
from vitrine_detector.handlers import register
from vitrine_detector.settings import DetectorSettings
from vitrine_runtime import tracing
from vitrine_runtime.consumer import EventConsumer, Outcome
from vitrine_runtime.db import Database
from vitrine_runtime.media import LocalMediaStore
from vitrine_runtime.testing import message_of
from vitrine_schemas.envelope import Envelope, Event
from vitrine_schemas.events import VideoConsentChanged, VideoUploaded

Frame = npt.NDArray[np.uint8]

MAGENTA = (230, 20, 220)  # RGB; nothing in the grey background comes near
CYAN = (20, 220, 230)


@dataclass(frozen=True)
class Square:
    """A flat-coloured square moving in a straight line while it is on screen."""

    colour: tuple[int, int, int]
    side: float  # share of the frame's height
    start_s: float
    end_s: float
    start: tuple[float, float]  # top-left corner, normalised
    end: tuple[float, float]
    hidden: tuple[tuple[float, float], ...] = ()  # (from_s, to_s) it is out of sight

    def corner_at(self, t: float) -> tuple[float, float] | None:
        if not self.start_s <= t < self.end_s:
            return None
        if any(a <= t < b for a, b in self.hidden):
            return None
        k = (t - self.start_s) / (self.end_s - self.start_s)
        return (
            self.start[0] + k * (self.end[0] - self.start[0]),
            self.start[1] + k * (self.end[1] - self.start[1]),
        )


def grey_background(width: int, height: int) -> Frame:
    """A real photo (scikit-image's camera), grey, so coloured squares stand out."""
    grey = resize(photos.camera(), (height, width), anti_aliasing=True)  # type: ignore[no-untyped-call]
    return np.repeat((grey * 255).astype(np.uint8)[:, :, None], 3, axis=2)


def scene(
    squares: Sequence[Square], seconds: float, fps: int = 30, width: int = 640, height: int = 360
) -> Iterator[Frame]:
    background = grey_background(width, height)
    for n in range(round(seconds * fps)):
        t = n / fps
        frame = background.copy()
        for square in squares:
            corner = square.corner_at(t)
            if corner is None:
                continue
            side = round(square.side * height)
            x, y = round(corner[0] * width), round(corner[1] * height)
            frame[y : y + side, x : x + side] = square.colour
        yield frame


def encode(
    frames: Iterator[Frame],
    *,
    fps: int = 30,
    codec: str = "libx264",
    container: str = "mp4",
    faststart: bool = False,
) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        # A real file: moving the index to the front (faststart) rereads what was written.
        path = Path(folder) / f"video.{container}"
        _encode_to(path, frames, fps, codec, container, faststart)
        return path.read_bytes()


def _encode_to(
    path: Path, frames: Iterator[Frame], fps: int, codec: str, container: str, faststart: bool
) -> None:
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format=container, options=options) as out:
        stream = cast(av.VideoStream, out.add_stream(codec, rate=Fraction(fps, 1)))
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            # veryfast keeps B-frames, so skipping non-reference frames is exercised.
            stream.options = {"preset": "veryfast", "crf": "23", "g": str(2 * fps)}
        else:
            stream.options = {"deadline": "realtime", "cpu-used": "8", "b": "800k"}
        for n, frame in enumerate(frames):
            if n == 0:
                stream.width, stream.height = frame.shape[1], frame.shape[0]
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@functools.cache
def one_square_video(**overrides: Any) -> tuple[bytes, Square]:
    """6 s; a magenta square on screen from 1.0 s to 4.5 s, crossing the frame."""
    square = Square(MAGENTA, 0.25, 1.0, 4.5, (0.05, 0.2), (0.7, 0.5))
    return encode(scene([square], 6.0), **overrides), square


@dataclass
class ColourDetector:
    """Finds squares of known colours in BGR frames; records what it was asked."""

    colours: dict[str, tuple[int, int, int]] = field(
        default_factory=lambda: {"magenta": MAGENTA, "cyan": CYAN}
    )
    batch_size: int = 4
    tolerance: int = 60
    min_area: float = 0.002  # share of the frame
    calls: list[int] = field(default_factory=list)

    def detect(self, images: Sequence[Frame]) -> list[list[Detection]]:
        self.calls.append(len(images))
        return [self._find(image) for image in images]

    def _find(self, image: Frame) -> list[Detection]:
        height, width = image.shape[:2]
        found = []
        for name, (r, g, b) in self.colours.items():
            distance = np.abs(image.astype(np.int16) - np.array([b, g, r], np.int16)).max(axis=2)
            labels, _ = ndimage.label(distance < self.tolerance)
            for where in ndimage.find_objects(labels):
                if where is None:
                    continue
                ys, xs = where
                if (ys.stop - ys.start) * (xs.stop - xs.start) < self.min_area * width * height:
                    continue
                box = Box(xs.start / width, ys.start / height, xs.stop / width, ys.stop / height)
                found.append(Detection(box, 0.9, name))
        return found


class SpyStore(LocalMediaStore):
    """The real local store, counting the objects it actually handed out."""

    def __init__(self, root: Any) -> None:
        super().__init__(root)
        self.reads: list[str] = []

    async def get(self, uri: str, max_bytes: int | None = None) -> bytes:
        blob = await super().get(uri, max_bytes)
        self.reads.append(uri)
        return blob


def uploaded(
    video_id: str, uri: str, consent: bool = True, creator_id: str = "creator-1"
) -> VideoUploaded:
    return VideoUploaded(
        video_id=video_id, creator_id=creator_id, media_uri=uri, identify_products=consent
    )


def consent_changed(video_id: str, uri: str, consent: bool = True) -> VideoConsentChanged:
    return VideoConsentChanged(
        video_id=video_id, creator_id="creator-1", media_uri=uri, identify_products=consent
    )


class DeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> None:
        self.sent.append((topic, headers))


@dataclass
class Harness:
    """The detector behind the runtime's real consumer, on a real database schema."""

    db: Database
    store: SpyStore
    detector: ColourDetector
    consumer: EventConsumer
    dead_letters: DeadLetters

    async def deliver(self, item: Event | Envelope[Any]) -> Outcome:
        envelope = (
            item
            if isinstance(item, Envelope)
            else Envelope.wrap(
                item, producer="test", correlation_id=tracing.current_correlation_id()
            )
        )
        return await self.consumer.handle(message_of(envelope))

    async def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Payloads written to the outbox, in order."""
        rows = await self.db.pool.fetch("SELECT event_type, payload FROM outbox ORDER BY id")
        return [
            json.loads(bytes(r["payload"]))["data"] | {"_type": r["event_type"]}
            for r in rows
            if event_type is None or r["event_type"] == event_type
        ]

    async def video(self, video_id: str) -> dict[str, Any] | None:
        row = await self.db.pool.fetchrow("SELECT * FROM videos WHERE video_id = $1", video_id)
        return dict(row) if row else None


def build_harness(
    db: Database, store: SpyStore, detector: ColourDetector, **settings: Any
) -> Harness:
    config = DetectorSettings(**settings)
    service = VideoDetector(
        media=store,
        detector=detector,
        limits=config.limits(),
        params=config.pipeline_params(),
        envelope=lambda data: Envelope.wrap(data, producer="detector"),
        open_source=open_with_pyav(0, skip_non_reference=True),
        model_id="colour-test",
    )
    consumer = EventConsumer("detector", max_attempts=2, retry_backoff_s=0.001)
    register(consumer, lambda: service)
    dead = DeadLetters()
    consumer.bind(db, dead)
    return Harness(db, store, detector, consumer, dead)


def new_video_id() -> str:
    return f"vid-{uuid.uuid4().hex[:10]}"
