"""Write frames to H.264 in MP4 or VP9 in WebM with PyAV (FFmpeg's libx264 and libvpx,
bundled in the PyAV wheel)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import cast

import av
import numpy as np
from av.video.stream import VideoStream
from numpy.typing import NDArray

from vitrine_shopbench.scene import Format

ENCODERS = {"h264": "libx264", "vp9": "libvpx-vp9"}


def check_encoders() -> None:
    """Fail early, with the reason, where this PyAV build lacks an encoder we need."""
    for codec, encoder in ENCODERS.items():
        try:
            av.codec.Codec(encoder, "w")
        except Exception as error:  # PyAV raises its own errors for an unknown codec
            raise RuntimeError(
                f"PyAV {av.__version__} has no {encoder} encoder for {codec}: {error}"
            ) from error


class VideoWriter:
    def __init__(self, path: Path, fmt: Format, quality: int) -> None:
        # bitexact: no random segment id, date or library version in the header, so the
        # same seed gives the same bytes.
        self._container = av.open(
            str(path), mode="w", format=fmt.container, options={"fflags": "+bitexact"}
        )
        stream = cast(VideoStream, self._container.add_stream(ENCODERS[fmt.codec], rate=fmt.fps))
        stream.width = fmt.width
        stream.height = fmt.height
        stream.pix_fmt = "yuv420p"
        # A fixed thread count keeps the bitstream identical from run to run.
        stream.codec_context.thread_count = 2
        stream.codec_context.gop_size = fmt.fps * 2
        if fmt.codec == "h264":
            stream.options = {"preset": "veryfast", "crf": str(quality)}
        else:
            stream.options = {
                "deadline": "realtime",
                "cpu-used": "8",
                "crf": str(quality),
                "b": "0",
                "row-mt": "1",
            }
        self._stream = stream
        self._index = 0
        self._fps = fmt.fps

    def write(self, rgb: NDArray[np.uint8]) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self._index
        frame.time_base = Fraction(1, self._fps)
        self._index += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
