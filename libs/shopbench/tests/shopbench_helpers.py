from __future__ import annotations

import hashlib
from pathlib import Path

import av

SEED = 7


def first_frame_sha256(path: Path) -> str:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return hashlib.sha256(frame.to_ndarray(format="rgb24").tobytes()).hexdigest()
