"""What the detector refuses to process, and the reason codes `video.failed` carries.

Limits protect the service from inputs that would take it down or hog it (a 4-hour
upload, an 8K stream, a gigabyte file); each refusal names the limit so the creator or
operator can act on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FailureCode(StrEnum):
    OUTSIDE_STORE = "outside_store"  # the URI points outside the media store
    NOT_FOUND = "not_found"  # a well-formed media URI with no object behind it
    TOO_LARGE = "too_large"
    TOO_LONG = "too_long"
    RESOLUTION_TOO_HIGH = "resolution_too_high"
    CORRUPT = "corrupt"  # a video container we know, broken (truncated, damaged)
    UNSUPPORTED = "unsupported"  # not a video, or a format/codec we cannot decode


class VideoRejected(Exception):
    """This video cannot be processed; the reason is final (reprocessing gives the same)."""

    def __init__(self, code: FailureCode, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VideoLimits:
    max_bytes: int
    max_duration_s: float
    max_pixels: int  # width x height of one frame

    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise VideoRejected(
                FailureCode.TOO_LARGE, f"the file is {size} bytes; the limit is {self.max_bytes}"
            )

    def check_resolution(self, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise VideoRejected(FailureCode.CORRUPT, f"the video declares {width}x{height} frames")
        if width * height > self.max_pixels:
            raise VideoRejected(
                FailureCode.RESOLUTION_TOO_HIGH,
                f"frames are {width}x{height} ({width * height} pixels);"
                f" the limit is {self.max_pixels} pixels",
            )

    def check_duration(self, seconds: float, declared: bool = True) -> None:
        if seconds > self.max_duration_s:
            what = "declares" if declared else "runs past"
            raise VideoRejected(
                FailureCode.TOO_LONG,
                f"the video {what} {seconds:.1f} s; the limit is {self.max_duration_s:g} s",
            )


def check_complete(last_frame_s: float | None, declared_s: float | None, fps: float) -> None:
    """A stream that stops well before its declared end was cut off (a truncated upload)."""
    if last_frame_s is None:
        raise VideoRejected(FailureCode.CORRUPT, "no frame could be decoded")
    if declared_s is None or declared_s <= 0:
        return
    # Slack for the last frames' duration, skipped non-reference frames and edit lists.
    slack = max(0.5, 0.05 * declared_s, 3.0 / fps if fps > 0 else 0.0)
    if last_frame_s + slack < declared_s:
        raise VideoRejected(
            FailureCode.CORRUPT,
            f"the stream ends at {last_frame_s:.2f} s of the {declared_s:.2f} s its header"
            " declares (truncated?)",
        )


# Leading bytes of the containers an upload may plausibly be in, so that a broken file
# of a known kind reads as "corrupt" and anything else as "unsupported".
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (4, b"ftyp", "MP4/QuickTime"),
    (4, b"moov", "QuickTime"),
    (4, b"mdat", "QuickTime"),
    (4, b"free", "QuickTime"),
    (4, b"wide", "QuickTime"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"FLV", "FLV"),
    (0, b"OggS", "Ogg"),
    (0, b"\x00\x00\x01\xba", "MPEG-PS"),
)


def sniff_container(head: bytes) -> str | None:
    """The container a file's first bytes announce, or None when they announce none."""
    for offset, magic, name in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:
        return "MPEG-TS"
    return None


def undecodable(head: bytes, detail: str) -> VideoRejected:
    """The failure for a file the decoder could not read, by what the file claims to be."""
    container = sniff_container(head)
    if container is None:
        return VideoRejected(
            FailureCode.UNSUPPORTED, f"not a video container the detector knows ({detail})"
        )
    return VideoRejected(FailureCode.CORRUPT, f"damaged {container} file: {detail}")
