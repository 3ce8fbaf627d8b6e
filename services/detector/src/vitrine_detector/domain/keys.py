"""Names the detector gives to what it writes: track ids and crop keys in the media store."""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def track_id(index: int) -> str:
    """Track ids follow first appearance, so reprocessing a video gives the same ids."""
    return f"t{index:03d}"


def video_folder(video_id: str) -> str:
    """A media key segment for any video id (ids are free text; keys are not).

    A readable prefix, plus a hash whenever the id had to be changed, so two ids never
    share a folder.
    """
    safe = _UNSAFE.sub("_", video_id).strip("._-")[:80]
    if safe == video_id and safe:
        return safe
    digest = hashlib.sha256(video_id.encode()).hexdigest()[:12]
    return f"{safe}-{digest}" if safe else f"v-{digest}"


def crop_key(video_id: str, track: str, n: int) -> str:
    return f"crops/{video_folder(video_id)}/{track}-{n}.jpg"
