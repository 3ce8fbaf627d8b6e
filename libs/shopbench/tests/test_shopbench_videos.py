"""Videos decode with PyAV, with the codec, size, frame rate and length promised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import pytest
from shopbench_helpers import SEED

from vitrine_shopbench.config import SMALL, Slot
from vitrine_shopbench.encode import check_encoders
from vitrine_shopbench.generate import plan_dataset, render_video
from vitrine_shopbench.scene import Format, plan_video

_CONTAINERS = {"mp4": "mp4", "webm": "webm"}


def _probe(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return {
            "formats": set(container.format.name.split(",")),
            "codec": stream.codec_context.name,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "fps": float(stream.average_rate or 0),
            "frames": frames,
        }


def test_encoders_exist() -> None:
    check_encoders()


def test_videos_decode_as_promised(small: Path, truths: list[dict[str, Any]]) -> None:
    for truth in truths:
        path = small / truth["file"]
        assert path.suffix == f".{truth['container']}"
        got = _probe(path)
        assert _CONTAINERS[truth["container"]] in got["formats"]
        assert got["codec"] == truth["codec"]
        assert (got["width"], got["height"]) == (truth["width"], truth["height"])
        assert got["fps"] == pytest.approx(truth["fps"])
        assert got["frames"] == truth["frame_count"]
        assert 5000 <= truth["duration_ms"] <= 60000


def test_small_scale_makes_what_its_config_promises(truths: list[dict[str, Any]]) -> None:
    promised = sorted(
        (s.format.codec, s.format.width, s.format.height, s.format.fps, s.duration)
        for slots in SMALL.videos.values()
        for s in slots
    )
    made = sorted(
        (t["codec"], t["width"], t["height"], t["fps"], t["duration_ms"] / 1000) for t in truths
    )
    assert made == promised
    assert {t["codec"] for t in truths} == {"h264", "vp9"}


@pytest.mark.slow
def test_a_1080p_vp9_video_decodes_as_promised(tmp_path: Path) -> None:
    catalog, _ = plan_dataset(SEED, SMALL, [])
    slot = Slot(Format("vp9", 1080, 1920, 24), 5.0)
    plan = plan_video(
        SEED,
        catalog,
        "test-1080",
        "test",
        slot.format,
        slot.duration,
        list(catalog.products),
        ["coffee"],
    )
    result = render_video(SEED, plan, tmp_path, None)
    got = _probe(tmp_path / result.file)
    assert (got["codec"], got["width"], got["height"], got["frames"]) == ("vp9", 1080, 1920, 120)
    truth = json.loads((tmp_path / "groundtruth" / "test" / "test-1080.json").read_text())
    assert truth["duration_ms"] == 5000
