"""Scoring a shoppable-video pipeline against ShopBench ground truth.

What a viewer sees of the pipeline is a video's tags: a product, with the time span of the
tracked object that showed it. The figures, all at product level per video:

- precision: of the (video, product) pairs tagged, the share the video really shows;
- recall: of the (video, product) pairs the video shows, the share tagged;
- span precision: of the tags, the share whose time span overlaps a span in which that
  product is on screen (a tag on the right product at the wrong moment is wrong here);
- top-1 among look-alikes: of the tracks that show a product with look-alikes in the
  catalog and were tagged, the share tagged with that product rather than a look-alike;
- every miss with its reason (never tracked, tracked but not matched, matched to another
  product), and every false tag with what the track really showed.

A track is the object it overlaps most: the mean, over its boxes, of the IoU with that
object's box in the ground-truth frame nearest in time (0 where the object is not boxed
there), at least `MIN_TRACK_IOU`.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MIN_TRACK_IOU = 0.3
FRAME_TOLERANCE_MS = 80  # a box is compared with a ground-truth frame at most this far away
SPAN_TOLERANCE_MS = 500  # how far a tag's span may lie from the product's span and still count


@dataclass(frozen=True, slots=True)
class TrackBox:
    """A box of a track at a moment, in frame-relative coordinates (0..1)."""

    at_ms: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Track:
    video_id: str
    track_id: str
    first_seen_ms: int
    last_seen_ms: int
    boxes: tuple[TrackBox, ...] = ()


@dataclass(frozen=True, slots=True)
class Tag:
    video_id: str
    track_id: str
    product_id: str  # the dataset's product id (the caller maps service ids back)
    first_seen_ms: int
    last_seen_ms: int
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class Miss:
    video_id: str
    product_id: str
    reason: str  # "not_tracked" | "not_matched" | "matched_other"
    detail: str = ""
    track_ids: tuple[str, ...] = ()  # the tracks that followed the product


@dataclass(frozen=True, slots=True)
class FalseTag:
    video_id: str
    track_id: str
    product_id: str
    shows: str  # what the track overlaps: a product id, "distractor:<family>" or "nothing"
    score: float


@dataclass
class Report:
    videos: int = 0
    truth_pairs: int = 0
    tagged_pairs: int = 0
    correct_pairs: int = 0
    tags: int = 0
    tags_on_time: int = 0
    lookalike_tagged: int = 0
    lookalike_correct: int = 0
    tracks: int = 0
    tracks_on_products: int = 0
    misses: list[Miss] = field(default_factory=list)
    false_tags: list[FalseTag] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.tagged_pairs if self.tagged_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.truth_pairs if self.truth_pairs else 1.0

    @property
    def span_precision(self) -> float:
        return self.tags_on_time / self.tags if self.tags else 1.0

    @property
    def lookalike_top1(self) -> float:
        return self.lookalike_correct / self.lookalike_tagged if self.lookalike_tagged else 1.0

    def summary(self) -> dict[str, Any]:
        return {
            "videos": self.videos,
            "truth_pairs": self.truth_pairs,
            "tagged_pairs": self.tagged_pairs,
            "correct_pairs": self.correct_pairs,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "tags": self.tags,
            "span_precision": round(self.span_precision, 4),
            "lookalike_tagged": self.lookalike_tagged,
            "lookalike_top1": round(self.lookalike_top1, 4),
            "tracks": self.tracks,
            "tracks_on_products": self.tracks_on_products,
            "misses": {
                reason: sum(m.reason == reason for m in self.misses)
                for reason in ("not_tracked", "not_matched", "matched_other")
            },
        }


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [x1, y1, x2, y2] boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def overlaps(start: int, end: int, spans: Iterable[Sequence[int]], tolerance: int = 0) -> bool:
    return any(start < s[1] + tolerance and s[0] - tolerance <= end for s in spans)


class _Frames:
    """A video's ground-truth frames, found by time."""

    def __init__(self, truth: Mapping[str, Any]) -> None:
        self.width = float(truth["width"])
        self.height = float(truth["height"])
        self.frames = sorted(truth["frames"], key=lambda f: f["time_ms"])
        self.times = [f["time_ms"] for f in self.frames]

    def nearest(self, at_ms: int) -> Mapping[str, Any] | None:
        i = bisect.bisect_left(self.times, at_ms)
        near = [
            j
            for j in (i - 1, i)
            if 0 <= j < len(self.frames) and abs(self.times[j] - at_ms) <= FRAME_TOLERANCE_MS
        ]
        return self.frames[min(near, key=lambda j: abs(self.times[j] - at_ms))] if near else None

    def object_of(self, track: Track) -> tuple[int | None, float]:
        """The ground-truth object the track follows, and its mean IoU (None if none)."""
        totals: dict[int, float] = defaultdict(float)
        compared = 0
        for box in track.boxes:
            frame = self.nearest(box.at_ms)
            if frame is None:
                continue
            compared += 1
            mine = (
                box.x * self.width,
                box.y * self.height,
                (box.x + box.width) * self.width,
                (box.y + box.height) * self.height,
            )
            for seen in frame["boxes"]:
                totals[int(seen["object_id"])] += iou(mine, seen["box"])
        if not compared or not totals:
            return None, 0.0
        object_id, total = max(totals.items(), key=lambda item: item[1])
        mean = total / compared
        return (object_id, mean) if mean >= MIN_TRACK_IOU else (None, mean)


def followed_object(truth: Mapping[str, Any], track: Track) -> int | None:
    """The id of the ground-truth object a track follows, or None."""
    return _Frames(truth).object_of(track)[0]


def score(
    truths: Mapping[str, Mapping[str, Any]],
    tracks: Iterable[Track],
    tags: Iterable[Tag],
    lookalikes: Mapping[str, Sequence[str]],
) -> Report:
    """Score the tracks and tags of the videos in `truths` (keyed by video id).

    `lookalikes` maps a product id to the ids of its look-alikes in the catalog. Tracks
    and tags of videos not in `truths` are ignored.
    """
    report = Report(videos=len(truths))
    tracks_by_video: dict[str, list[Track]] = defaultdict(list)
    for track in tracks:
        if track.video_id in truths:
            tracks_by_video[track.video_id].append(track)
    tags_by_video: dict[str, list[Tag]] = defaultdict(list)
    for tag in tags:
        if tag.video_id in truths:
            tags_by_video[tag.video_id].append(tag)

    for video_id, truth in sorted(truths.items()):
        frames = _Frames(truth)
        objects = {int(o["object_id"]): o for o in truth["objects"]}
        shows: dict[str, dict[str, Any] | None] = {}
        for track in tracks_by_video[video_id]:
            object_id, _ = frames.object_of(track)
            shows[track.track_id] = objects.get(object_id) if object_id is not None else None
        report.tracks += len(shows)
        report.tracks_on_products += sum(
            1 for o in shows.values() if o is not None and o["product_id"] is not None
        )

        on_screen = {p["product_id"]: p["spans_ms"] for p in truth["products"]}
        video_tags = tags_by_video[video_id]
        tagged = {t.product_id for t in video_tags}
        report.truth_pairs += len(on_screen)
        report.tagged_pairs += len(tagged)
        report.correct_pairs += len(tagged & set(on_screen))
        report.tags += len(video_tags)

        for tag in video_tags:
            spans = on_screen.get(tag.product_id, [])
            if overlaps(tag.first_seen_ms, tag.last_seen_ms, spans, SPAN_TOLERANCE_MS):
                report.tags_on_time += 1
            shown = shows.get(tag.track_id)
            truth_id = shown["product_id"] if shown is not None else None
            if truth_id is not None and lookalikes.get(truth_id):
                report.lookalike_tagged += 1
                report.lookalike_correct += tag.product_id == truth_id
            if tag.product_id not in on_screen:
                what = (
                    "nothing"
                    if shown is None
                    else shown["product_id"] or f"distractor:{shown.get('family', '?')}"
                )
                report.false_tags.append(
                    FalseTag(video_id, tag.track_id, tag.product_id, str(what), tag.score)
                )

        for product_id in sorted(set(on_screen) - tagged):
            followed = [tid for tid, o in shows.items() if o and o["product_id"] == product_id]
            if not followed:
                report.misses.append(Miss(video_id, product_id, "not_tracked"))
                continue
            instead = sorted({t.product_id for t in video_tags if t.track_id in set(followed)})
            if instead:
                report.misses.append(
                    Miss(video_id, product_id, "matched_other", ",".join(instead), tuple(followed))
                )
            else:
                report.misses.append(
                    Miss(
                        video_id,
                        product_id,
                        "not_matched",
                        f"{len(followed)} track(s)",
                        tuple(followed),
                    )
                )
    return report


def lookalikes_of(catalog: Mapping[str, Any]) -> dict[str, list[str]]:
    """Product id -> its look-alikes' ids, from a ShopBench catalog.json."""
    return {
        p["product_id"]: [other["product_id"] for other in p.get("lookalikes", [])]
        for p in catalog["products"]
    }
