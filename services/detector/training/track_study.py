"""Study the tracker on ShopBench without running the detector again for every setting.

    python services/detector/training/track_study.py record \\
        .vitrine/shopbench/seed-{7,9,10,11}-full --out .vitrine/track-study.pkl
    python services/detector/training/track_study.py replay .vitrine/track-study.pkl \\
        --set veto_similarity=0.5 --set high_confidence=0.3

`record` runs each validation video through the service's pipeline once (its settings:
DETECTOR_WEIGHTS, sampling, ...) and keeps, per sampled frame, the time, the shot cut and
every detection with its appearance: everything the tracker sees. `replay` feeds those
frames to the tracker with other parameters (any `TrackingParams` field) in seconds and
scores the tracks against the ground truth, as `make eval` would before matching:

- products tracked: (video, product) pairs some published track follows (the ceiling of
  the matcher's recall);
- identity switches: tracks whose boxes follow two objects (each in two boxes or more);
- tracks published, and the products no track follows, each with how often it was on
  screen in the sampled frames and how often the detector boxed it (detector or tracker?).

It reads validation splits only: tracker settings are chosen there, never on test.
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitrine_detector import pipeline
from vitrine_detector.app import load_detector, video_opener
from vitrine_detector.domain.appearance import Appearance, describe
from vitrine_detector.domain.tracking import (
    Detection,
    Track,
    Tracker,
    TrackFilter,
    TrackingParams,
    stitch,
)
from vitrine_detector.settings import DetectorSettings
from vitrine_shopbench import scoring
from vitrine_stack.shopbench import truths as load_truths

SPLIT = "val"


@dataclass
class SampledFrame:
    t: float
    scene_cut: bool
    detections: list[Detection]
    appearances: list[Appearance]


@dataclass
class Recording:
    """What the tracker saw of every validation video of some datasets."""

    settings: dict[str, Any]
    videos: dict[tuple[str, str], list[SampledFrame]]  # (dataset root, video id) -> frames


class _RecordingRun(pipeline._Run):
    """The pipeline's run, keeping what it hands the tracker."""

    frames: list[SampledFrame]

    def _track(self, sampled: Any, detections: list[Detection]) -> None:
        appearances = [describe(sampled.image, d.box) for d in detections]
        self.frames.append(SampledFrame(sampled.t, sampled.scene_cut, detections, appearances))
        super()._track(sampled, detections)


def record(roots: list[Path]) -> Recording:
    settings = DetectorSettings()
    detector = load_detector(settings)
    params = settings.pipeline_params()
    limits = settings.limits()
    open_video = video_opener(settings)
    videos: dict[tuple[str, str], list[SampledFrame]] = {}
    for root in roots:
        for path in sorted((root / "videos" / SPLIT).iterdir()):
            run = _RecordingRun(detector, params, None)
            run.frames = []
            with open_video(path.read_bytes(), limits) as source:
                run.consume(source, limits)
            videos[(str(root), path.stem)] = run.frames
            print(f"{root.name} {path.stem}: {len(run.frames)} sampled frames", flush=True)
    return Recording({"weights": detector.model_id, "imgsz": detector.imgsz}, videos)


@dataclass
class Score:
    products: int = 0
    tracked: int = 0
    switches: int = 0
    tracks: int = 0
    lost: list[str] = dataclasses.field(default_factory=list)
    lost_keys: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)


def tracks_of(frames: list[SampledFrame], params: TrackingParams) -> list[Track]:
    tracker = Tracker(params)
    for frame in frames:
        if frame.scene_cut:
            tracker.cut()
        tracker.update(frame.t, frame.detections, frame.appearances)
    return stitch(tracker.finish(), params)


def score(recording: Recording, params: TrackingParams, keep: TrackFilter) -> Score:
    result = Score()
    truths: dict[str, dict[str, Any]] = {}
    for (root, video_id), frames in sorted(recording.videos.items()):
        if root not in truths:
            truths[root] = load_truths(Path(root), SPLIT)
        truth = truths[root][video_id]
        seen = scoring._Frames(truth)
        objects = {int(o["object_id"]): o for o in truth["objects"]}
        followed: set[str] = set()
        tracks = [t for t in tracks_of(frames, params) if keep.keeps(t)]
        for n, track in enumerate(tracks):
            boxes = tuple(
                scoring.TrackBox(round(o.t * 1000), o.box.x1, o.box.y1, o.box.width, o.box.height)
                for o in track.observations
            )
            as_scored = scoring.Track(video_id, str(n), 0, 0, boxes)
            object_id, _ = seen.object_of(as_scored)
            # As make eval scores: an object never on screen enough to be in the truth's
            # list (boxes only, mostly hidden) is followed by nobody.
            shown = objects.get(object_id) if object_id is not None else None
            if shown is not None and shown["product_id"]:
                followed.add(shown["product_id"])
            result.switches += _switches(seen, boxes)
        products = [p["product_id"] for p in truth["products"]]
        result.products += len(products)
        result.tracked += len(set(products) & followed)
        result.tracks += len(tracks)
        result.lost += [f"{Path(root).name}/{video_id}/{p}" for p in products if p not in followed]
        result.lost_keys += [(root, video_id, p) for p in products if p not in followed]
    return result


def detection_record(recording: Recording, root: str, video_id: str, product_id: str) -> str:
    """Why no track follows a product: how often it was on screen in the sampled frames
    (and mostly visible), and how often the detector boxed it (IoU >= 0.3). Rarely boxed
    while visible points at the detector; boxed often, at the tracker."""
    truth = load_truths(Path(root), SPLIT)[video_id]
    seen = scoring._Frames(truth)
    objects = {int(o["object_id"]) for o in truth["objects"] if o["product_id"] == product_id}
    present = visible = boxed = 0
    for frame in recording.videos[(root, video_id)]:
        nearest = seen.nearest(round(frame.t * 1000))
        shown = [b for b in nearest["boxes"] if int(b["object_id"]) in objects] if nearest else []
        if not shown:
            continue
        present += 1
        visible += shown[0].get("visible", 1.0) >= 0.5
        truth_box = shown[0]["box"]
        overlaps = [
            scoring.iou(
                (
                    d.box.x1 * seen.width,
                    d.box.y1 * seen.height,
                    d.box.x2 * seen.width,
                    d.box.y2 * seen.height,
                ),
                truth_box,
            )
            for d in frame.detections
        ]
        boxed += max(overlaps, default=0.0) >= scoring.MIN_TRACK_IOU
    return (
        f"on screen in {present} sampled frames ({visible} at least half visible),"
        f" boxed by the detector in {boxed}"
    )


def _switches(seen: Any, boxes: tuple[scoring.TrackBox, ...]) -> int:
    """1 if the boxes follow two objects or more (each in two boxes or more), else 0."""
    owners: Counter[int] = Counter()
    for box in boxes:
        frame = seen.nearest(box.at_ms)
        if frame is None:
            continue
        mine = (
            box.x * seen.width,
            box.y * seen.height,
            (box.x + box.width) * seen.width,
            (box.y + box.height) * seen.height,
        )
        overlaps = [(scoring.iou(mine, o["box"]), int(o["object_id"])) for o in frame["boxes"]]
        best = max(overlaps, default=(0.0, -1))
        if best[0] >= scoring.MIN_TRACK_IOU:
            owners[best[1]] += 1
    return int(sum(1 for n in owners.values() if n >= 2) > 1)


def _params(overrides: list[str], settings: DetectorSettings) -> TrackingParams:
    base = settings.pipeline_params().tracking
    fields = {f.name: f.type for f in dataclasses.fields(TrackingParams)}
    changes: dict[str, float] = {}
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in fields:
            raise SystemExit(f"unknown tracking parameter {name!r}: one of {sorted(fields)}")
        changes[name] = float(value)
    return dataclasses.replace(base, **changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="run the validation videos through the detector")
    rec.add_argument("datasets", type=Path, nargs="+", help="ShopBench roots with a val split")
    rec.add_argument("--out", type=Path, required=True)
    rep = commands.add_parser("replay", help="track the recorded frames with other settings")
    rep.add_argument("recording", type=Path)
    rep.add_argument("--set", action="append", default=[], help="TrackingParams field=value")
    args = parser.parse_args(argv)

    if args.command == "record":
        recording = record(args.datasets)
        args.out.write_bytes(pickle.dumps(recording))
        print(f"wrote {args.out} ({len(recording.videos)} videos, {recording.settings})")
        return 0
    recording = pickle.loads(args.recording.read_bytes())  # noqa: S301 (our own file)
    settings = DetectorSettings()
    params = _params(args.set, settings)
    keep = settings.pipeline_params().track_filter
    result = score(recording, params, keep)
    print(f"recorded with {recording.settings}; tracking {params}")
    print(
        f"products tracked {result.tracked}/{result.products}, identity switches"
        f" {result.switches}, tracks {result.tracks}"
    )
    for lost, key in zip(result.lost, result.lost_keys, strict=True):
        print(f"  not tracked: {lost}: {detection_record(recording, *key)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
