"""`make bench-detector`: how fast the detector turns 720p H.264 video into tracks.

In one run, on the same ShopBench clips (seed 7, the test split's 720p H.264 landscape
videos, 62 s in all; made first if missing), three ways through each file:

1. pure decoding with PyAV: every frame decoded (FFmpeg threads as the codec allows),
   nothing else: the ceiling for anything that looks at the video;
2. the detector as the service runs it (its settings, weights and code path: adaptive
   sampling, reference frames only, batched YOLO, its own tracker, best crops);
3. the obvious baseline: ultralytics' own tracking (`model.track`, persist, its default
   tracker) on every frame at 640 px, with the trained float weights as ultralytics loads
   them (`shopbench-yolo.pt` in PyTorch, the network the service's INT8 model was made
   from; `--baseline-weights` for others).

Decoding and the detector run `--repeats` times each (default 3, alternating) and keep
their fastest pass; the baseline runs once. For each: video seconds processed per wall
second, and the share of the ground truth's objects that some track follows (object
recall: a track follows the object it overlaps most, mean IoU >= 0.3, as `make eval`
counts). Targets (issue 3): the detector >= 10x real time, >= 20x the baseline at the same
or lower recall, >= 0.5 of pure decoding.

Nothing is asserted; the machine is shared, so the load average is printed beside the
figures. Weights and settings come from the environment, as in the service
(DETECTOR_WEIGHTS, DETECTOR_IMGSZ, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from vitrine_detector.app import load_detector, video_opener
from vitrine_detector.pipeline import detect_objects
from vitrine_detector.settings import MODELS, DetectorSettings
from vitrine_shopbench import scoring
from vitrine_stack.machine import cpu_kind
from vitrine_stack.shopbench import ensure_dataset, truths

SEED = 7
CLIPS = ("test-0003", "test-0005", "test-0008")  # 1280x720 H.264: 12, 20 and 30 s
TARGET_REALTIME = 10.0
TARGET_VS_BASELINE = 20.0
TARGET_VS_DECODE = 0.5


def decode_only(path: Path) -> float:
    """Seconds to decode every frame of the file."""
    started = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass
    return time.perf_counter() - started


def detector_run(path: Path, settings: DetectorSettings, model: Any) -> tuple[float, list[Any]]:
    """Seconds through the service's pipeline, and its tracks."""
    limits = settings.limits()
    started = time.perf_counter()
    with video_opener(settings)(path.read_bytes(), limits) as source:
        result = detect_objects(source, model, settings.pipeline_params(), limits)
    return time.perf_counter() - started, result.objects


def _frames_bgr(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield float(frame.time or 0.0), frame.to_ndarray(format="bgr24")


def baseline_run(path: Path, weights: Path) -> tuple[float, list[scoring.Track], str]:
    """Seconds for ultralytics tracking on every frame at 640 px, and its tracks."""
    from ultralytics import YOLO  # type: ignore[attr-defined]

    model = YOLO(str(weights), task="detect")
    boxes: dict[int, list[scoring.TrackBox]] = {}
    started = time.perf_counter()
    for t, image in _frames_bgr(path):
        result = model.track(image, persist=True, imgsz=640, verbose=False)[0]
        if result.boxes is None or result.boxes.id is None:
            continue
        for track_id, (x1, y1, x2, y2) in zip(
            result.boxes.id.int().tolist(), result.boxes.xyxyn.tolist(), strict=True
        ):
            boxes.setdefault(track_id, []).append(
                scoring.TrackBox(round(t * 1000), x1, y1, x2 - x1, y2 - y1)
            )
    elapsed = time.perf_counter() - started
    tracker = str(getattr(model.predictor.args, "tracker", "default"))
    tracks = [
        scoring.Track(path.stem, str(k), v[0].at_ms, v[-1].at_ms, tuple(v))
        for k, v in boxes.items()
    ]
    return elapsed, tracks, Path(tracker).name


def object_recall(truth: dict[str, Any], tracks: list[scoring.Track]) -> tuple[int, int]:
    """(objects some track follows, objects on screen)."""
    followed = {scoring.followed_object(truth, t) for t in tracks} - {None}
    return len(followed & {o["object_id"] for o in truth["objects"]}), len(truth["objects"])


def _as_track(video_id: str, detected: Any) -> scoring.Track:
    return scoring.Track(
        video_id,
        "t",
        round(detected.track.first_t * 1000),
        round(detected.track.last_t * 1000),
        tuple(
            scoring.TrackBox(round(o.t * 1000), o.box.x1, o.box.y1, o.box.width, o.box.height)
            for o in detected.track.observations
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=Path(".vitrine/shopbench/seed-7-full"))
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--baseline-weights", type=Path, default=MODELS / "shopbench-yolo.pt")
    parser.add_argument(
        "--repeats", type=int, default=3, help="passes of decoding and detector per clip"
    )
    args = parser.parse_args(argv)

    root = ensure_dataset(args.dataset, SEED, "full", ["test"], videos=CLIPS)
    ground = {k: v for k, v in truths(root, "test").items() if k in CLIPS}
    settings = DetectorSettings()
    model = load_detector(settings)
    cpu = cpu_kind().describe()
    print(
        f"detector: {model.model_id} at {model.imgsz} px, batch {settings.detector_batch_size}\n"
        f"machine: {cpu}; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    totals = {"video": 0.0, "decode": 0.0, "detector": 0.0, "baseline": 0.0}
    found = {"detector": [0, 0], "baseline": [0, 0]}
    tracker = ""
    ratios: list[float] = []  # detector / decoding of each pass, for the spread
    for video_id, truth in sorted(ground.items()):
        path = root / truth["file"]
        seconds = truth["duration_ms"] / 1000
        totals["video"] += seconds
        # Decoding and the detector alternate, and each keeps its fastest pass: on a
        # shared 2-core machine a neighbour's burst only ever adds time, and one pass of
        # each (as before) moved the ratio by up to 0.1 between identical runs.
        decode_passes, detect_passes = [], []
        for _ in range(args.repeats):
            decode_passes.append(decode_only(path))
            elapsed, objects = detector_run(path, settings, model)
            detect_passes.append(elapsed)
        decode_s, detect_s = min(decode_passes), min(detect_passes)
        ratios += [d / t for d, t in zip(decode_passes, detect_passes, strict=True)]
        ours = object_recall(truth, [_as_track(video_id, o) for o in objects])
        line = (
            f"  {video_id} {truth['width']}x{truth['height']} {truth['fps']} fps {seconds:.0f} s:"
            f" decode {seconds / decode_s:5.1f}x, detector {seconds / detect_s:5.1f}x"
            f" ({len(objects)} tracks, {ours[0]}/{ours[1]} objects)"
        )
        totals["decode"] += decode_s
        totals["detector"] += detect_s
        found["detector"] = [a + b for a, b in zip(found["detector"], ours, strict=True)]
        if not args.skip_baseline:
            base_s, base_tracks, tracker = baseline_run(path, args.baseline_weights)
            theirs = object_recall(truth, base_tracks)
            totals["baseline"] += base_s
            found["baseline"] = [a + b for a, b in zip(found["baseline"], theirs, strict=True)]
            line += (
                f", baseline {seconds / base_s:4.2f}x ({len(base_tracks)} tracks,"
                f" {theirs[0]}/{theirs[1]} objects)"
            )
        print(line, flush=True)

    video = totals["video"]
    speed = {k: video / v for k, v in totals.items() if k != "video" and v > 0}
    recall = {k: v[0] / v[1] for k, v in found.items() if v[1]}
    print()
    print(f"== bench-detector: {len(ground)} clips, {video:.0f} s of 720p H.264 video")
    print(f"  pure PyAV decoding      {speed['decode']:6.1f}x real time")
    print(
        f"  detector (service)      {speed['detector']:6.1f}x real time"
        f"   target >= {TARGET_REALTIME:.0f}x   object recall {recall['detector']:.3f}"
    )
    figures: dict[str, Any] = {
        "video_s": round(video, 1),
        "decode_x": round(speed["decode"], 2),
        "detector_x": round(speed["detector"], 2),
        "detector_object_recall": round(recall["detector"], 4),
        "detector_vs_decode": round(speed["detector"] / speed["decode"], 3),
        "load_average": round(os.getloadavg()[0], 2),
        "cpu": cpu,
    }
    if "baseline" in speed:
        print(
            f"  baseline (track, 640)   {speed['baseline']:6.2f}x real time"
            f"   ({tracker}, every frame)   object recall {recall['baseline']:.3f}"
        )
        figures |= {
            "baseline_x": round(speed["baseline"], 3),
            "baseline_object_recall": round(recall["baseline"], 4),
            "detector_vs_baseline": round(speed["detector"] / speed["baseline"], 2),
        }
        print(
            f"  detector / baseline     {figures['detector_vs_baseline']:6.1f}x"
            f"              target >= {TARGET_VS_BASELINE:.0f}x (recall"
            f" {recall['detector']:.3f} vs {recall['baseline']:.3f})"
        )
    figures["detector_vs_decode_passes"] = [round(min(ratios), 3), round(max(ratios), 3)]
    print(
        f"  detector / decoding     {figures['detector_vs_decode']:6.2f}"
        f"               target >= {TARGET_VS_DECODE}   (fastest of {args.repeats} passes each;"
        f" single clips and passes {min(ratios):.2f}-{max(ratios):.2f})"
    )
    print(
        f"  load average now {os.getloadavg()[0]:.2f} (2 cores: above ~0.5 the figures understate)"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
