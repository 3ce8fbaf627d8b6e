"""`make eval` keeps the detector's tracks and crops, for studying the matcher offline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from vitrine_runtime.media import LocalMediaStore
from vitrine_stack.evaluation import VideoRun, keep_tracks, track_of


def detected(video_id: str, track_id: str, crops: list[str]) -> dict[str, object]:
    return {
        "video_id": video_id,
        "track_id": track_id,
        "first_seen_ms": 100,
        "last_seen_ms": 900,
        "boxes": [{"at_ms": 100, "x": 0.1, "y": 0.2, "width": 0.3, "height": 0.4}],
        "crops": [{"uri": uri, "at_ms": 100, "quality": 0.5} for uri in crops],
    }


def run_of(video_id: str, tracks: list[dict[str, object]]) -> VideoRun:
    return VideoRun(
        video_id=video_id,
        duration_s=1.0,
        outcome={},
        tracks=[{"track_id": t["track_id"], "best_score": 0.5} for t in tracks],
        objects=[track_of(t) for t in tracks],
        detected=tracks,
        tags=[],
        uploaded_at=0.0,
        done_s=0.0,
    )


def test_every_crop_is_copied_out_of_the_store_and_named_in_the_kept_tracks(
    tmp_path: Path,
) -> None:
    media = LocalMediaStore(tmp_path / "media")
    uris = [
        asyncio.run(media.put(f"crops/v{n}/{k}.jpg", f"jpeg {n}/{k}".encode(), "image/jpeg"))
        for n in range(2)
        for k in range(2)
    ]
    runs = [
        run_of("v0", [detected("v0", "t0", uris[:2])]),
        run_of("v1", [detected("v1", "t0", uris[2:3]), detected("v1", "t1", uris[3:])]),
    ]
    folder = tmp_path / "tracks-seed-7-val"
    (folder / "crops").mkdir(parents=True)
    (folder / "crops" / "stale.jpg").write_bytes(b"from an earlier run")

    assert keep_tracks(runs, media, folder, tmp_path / "dataset") == folder
    # The store is wiped by the next run: the copies must outlive it.
    for path in (tmp_path / "media").rglob("*.jpg"):
        path.unlink()

    kept = json.loads((folder / "tracks.json").read_text())
    assert kept["dataset"] == str(tmp_path / "dataset")
    assert [v["video_id"] for v in kept["videos"]] == ["v0", "v1"]
    files = [c["file"] for v in kept["videos"] for t in v["detected"] for c in t["crops"]]
    contents = [(folder / f).read_bytes() for f in files]
    assert contents == [b"jpeg 0/0", b"jpeg 0/1", b"jpeg 1/0", b"jpeg 1/1"]
    assert sorted(p.name for p in (folder / "crops").iterdir()) == sorted(
        Path(f).name for f in files
    )  # nothing of the earlier run is left to be mistaken for this one's
    assert kept["videos"][1]["judged"] == [
        {"track_id": "t0", "best_score": 0.5},
        {"track_id": "t1", "best_score": 0.5},
    ]
