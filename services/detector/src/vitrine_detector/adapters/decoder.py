"""Video decoding with PyAV (FFmpeg): threaded, skipping what nobody will look at.

Most of a detector's time on CPU would be decoding if every frame were decoded and
converted. Here:
- FFmpeg decodes on several threads (frame and slice threading, as the codec allows);
- frames no other frame refers to (most B-frames) are not decoded at all
  (`skip_frame = NONREF`): the sampler wants a few frames per second, and the reference
  frames alone still come 10-30 times a second (about half the frames of x264 output,
  1.6-1.9x faster decoding here);
- optionally, no deblocking filter (`skip_loop_filter`), faster still at some quality;
- a decoded frame is only judged by a signature read straight from its luma plane; the
  costly conversion to BGR happens for the sampled few.

Anything FFmpeg cannot read becomes a `VideoRejected` (corrupt or unsupported) instead
of an exception that would take the consumer down.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from fractions import Fraction
from types import TracebackType

import av
import av.error
import numpy as np

from vitrine_detector.domain.crops import Image
from vitrine_detector.domain.limits import FailureCode, VideoLimits, VideoRejected, undecodable
from vitrine_detector.domain.sampling import Signature
from vitrine_detector.pipeline import VideoInfo

# Pixel formats whose first plane is 8-bit luma, read without any conversion.
_LUMA_FIRST = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}
)
_SIGNATURE_ROWS = 36  # about 36 x 64 for a 16:9 frame
_BLOCK = 3  # each signature cell averages BLOCK x BLOCK pixels spread over its area
_SIGNATURE_SCALE = np.float32(1.0 / (255 * _BLOCK * _BLOCK))
_PROBE_OPTIONS = {"probesize": str(8 * 1024 * 1024), "analyzeduration": str(5_000_000)}


# FFmpeg says *why* only in its log ("moov atom not found"), which PyAV attaches to its
# exceptions only while FFmpeg's log is routed to Python. That routing stays off: with
# threaded decoding it can deadlock (a decoder thread waiting for the GIL while the
# caller waits for it; a benchmark run here once hung with every thread in such a wait).
# The failure names the container instead (see `undecodable`).


def _describe(exc: BaseException) -> str:
    if not isinstance(exc, av.error.FFmpegError):
        return str(exc) or type(exc).__name__
    what = str(exc.strerror or type(exc).__name__).strip()
    if exc.log and len(exc.log) == 3 and str(exc.log[2]).strip():
        return f"{what} ({str(exc.log[2]).strip()})"
    return what


class _Frame:
    __slots__ = ("_frame", "_turns", "t")

    def __init__(self, frame: av.VideoFrame, t: float, turns: int) -> None:
        self._frame = frame
        self._turns = turns  # quarter turns counter-clockwise to show it upright
        self.t = t

    def signature(self) -> Signature:
        frame = self._frame
        if frame.format.name in _LUMA_FIRST:
            plane = frame.planes[0]
            size = plane.height * plane.line_size
            rows = np.frombuffer(memoryview(plane), np.uint8)[:size]
            luma = rows.reshape(plane.height, plane.line_size)[:, : plane.width]
        else:  # 10-bit, RGB and other rare formats: let swscale make a small grey copy
            grey = frame.reformat(width=128, height=72, format="gray").to_ndarray()
            luma = np.asarray(grey, np.uint8)
        step = max(1, luma.shape[0] // (_SIGNATURE_ROWS * _BLOCK))
        sub = luma[::step, ::step]
        # Average blocks of the subsampled plane: sensor noise and compression noise
        # mostly cancel out, so only real change registers.
        rows, cols = (sub.shape[0] // _BLOCK) * _BLOCK, (sub.shape[1] // _BLOCK) * _BLOCK
        blocks = sub[:rows, :cols].reshape(rows // _BLOCK, _BLOCK, cols // _BLOCK, _BLOCK)
        sums = blocks.sum(axis=(1, 3), dtype=np.uint32)  # integer sums: cheaper than mean
        signature: Signature = sums.astype(np.float32) * _SIGNATURE_SCALE
        return signature

    def image(self) -> Image:
        image: Image = np.asarray(self._frame.to_ndarray(format="bgr24"), np.uint8)
        if self._turns:
            image = np.ascontiguousarray(np.rot90(image, self._turns))
        return image


class PyAVSource:
    """One video held in memory, opened for decoding. Use as a context manager."""

    def __init__(
        self,
        data: bytes,
        limits: VideoLimits,
        *,
        threads: int = 0,
        skip_non_reference: bool = True,
        skip_loop_filter: bool = False,
    ) -> None:
        self._head = data[:512]
        self._limits = limits
        try:
            self._container = av.open(io.BytesIO(data), mode="r", options=_PROBE_OPTIONS)
        except (av.error.FFmpegError, ValueError, UnicodeDecodeError) as exc:
            raise undecodable(self._head, _describe(exc)) from exc
        try:
            self._stream = self._open_stream(threads, skip_non_reference, skip_loop_filter)
            self._info = self._read_info()
        except BaseException:
            self._container.close()
            raise

    def _open_stream(
        self, threads: int, skip_non_reference: bool, skip_loop_filter: bool
    ) -> av.VideoStream:
        if not self._container.streams.video:
            raise VideoRejected(FailureCode.UNSUPPORTED, "the file has no video stream")
        stream = self._container.streams.video[0]
        if stream.codec_context is None:
            raise VideoRejected(FailureCode.UNSUPPORTED, "no decoder for this video codec")
        stream.thread_type = "AUTO"
        stream.thread_count = threads  # 0: FFmpeg picks one per core
        if skip_non_reference:
            stream.codec_context.skip_frame = "NONREF"
        if skip_loop_filter:
            # No deblocking: H.264 decodes 15-25 % faster; blocking builds up within a GOP
            # (35-50 dB PSNR against the true frames here), so crops get a little worse.
            stream.codec_context.options = {"skip_loop_filter": "all"}
        return stream

    def _read_info(self) -> VideoInfo:
        stream = self._stream
        duration: float | None = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif self._container.duration is not None:
            duration = self._container.duration / av.time_base
        rate = stream.average_rate or stream.guessed_rate
        return VideoInfo(
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            duration_s=duration,
            fps=float(rate) if rate else 0.0,
            codec=stream.codec_context.name,
            container=self._container.format.name,
        )

    @property
    def info(self) -> VideoInfo:
        return self._info

    def frames(self) -> Iterator[_Frame]:
        stream = self._stream
        time_base = stream.time_base or Fraction(1, 90_000)
        start = stream.start_time or 0
        fps = self._info.fps or 30.0
        index = 0
        try:
            for frame in self._container.decode(stream):
                self._limits.check_resolution(frame.width, frame.height)
                if frame.pts is not None:
                    t = max(0.0, float((frame.pts - start) * time_base))
                else:
                    t = index / fps
                index += 1
                yield _Frame(frame, t, _quarter_turns(frame))
        except (av.error.FFmpegError, ValueError) as exc:
            raise VideoRejected(
                FailureCode.CORRUPT, f"decoding failed after {index} frames: {_describe(exc)}"
            ) from exc

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> PyAVSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _quarter_turns(frame: av.VideoFrame) -> int:
    """Phones store portrait video sideways with a display matrix; boxes must be upright."""
    try:
        rotation = frame.rotation
    except (AttributeError, ValueError):
        return 0
    return round(rotation / 90) % 4 if rotation else 0
