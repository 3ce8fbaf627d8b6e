"""Follow each object across sampled frames, so one object is one track with a time span.

Why not ultralytics' ByteTrack: it assumes evenly spaced frames (its Kalman filter steps
once per update) and associates by box overlap only, while our samples are uneven (1 to
8 per second, denser when things move) and far enough apart that a moving object's boxes
may not overlap. This tracker predicts each box with a velocity measured in seconds,
gates on overlap *or* on colour appearance near the prediction, and, since a whole
video is at hand, stitches afterwards the pieces of one object that an occlusion or a
missed detection split apart. Association is optimal per frame (Hungarian), in two
rounds as in ByteTrack: confident detections first, then weak ones may only extend
existing tracks (a weak detection never starts one: that is how false tags begin).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from vitrine_detector.domain.appearance import Appearance, blend, similarity
from vitrine_detector.domain.boxes import Box, center_distance, iou

_NO = 1e6  # cost of a forbidden pairing


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box
    confidence: float
    label: str


@dataclass(frozen=True, slots=True)
class Observation:
    t: float
    box: Box
    confidence: float


@dataclass(frozen=True, slots=True)
class TrackingParams:
    high_confidence: float = 0.5  # detections below this only extend tracks
    min_iou: float = 0.2  # overlap with the predicted box that allows a pairing
    max_shift: float = 1.0  # without overlap: centre within this many box diagonals...
    min_similarity: float = 0.75  # ...and this appearance similarity
    veto_similarity: float = 0.35  # below this, boxes that overlap are still other objects
    appearance_weight: float = 0.4  # share of appearance in the pairing cost
    appearance_update: float = 0.2  # how fast a track's appearance follows the object
    max_gap_s: float = 1.5  # a track unseen this long ends (stitching may rejoin it)
    stitch_max_gap_s: float = 4.0
    stitch_min_similarity: float = 0.85
    stitch_max_shift: float = 0.35  # normalised frame units between the pieces' ends


@dataclass(slots=True)
class Tracklet:
    """A piece of track the online tracker followed without interruption."""

    id: int
    shot: int
    observations: list[Observation]
    appearance: Appearance
    label_votes: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def first(self) -> Observation:
        return self.observations[0]

    @property
    def last(self) -> Observation:
        return self.observations[-1]

    def predicted(self, t: float) -> Box:
        """Where the box should be at `t`, moving as it moved between the last two samples."""
        last = self.last
        if len(self.observations) < 2:
            return last.box
        before = self.observations[-2]
        dt = last.t - before.t
        if dt <= 0:
            return last.box
        (x0, y0), (x1, y1) = before.box.center, last.box.center
        ahead = t - last.t
        dx, dy = (x1 - x0) / dt * ahead, (y1 - y0) / dt * ahead
        # A velocity from two noisy boxes extrapolates badly: never more than one box away.
        reach = last.box.diagonal
        length = float(np.hypot(dx, dy))
        if length > reach > 0:
            dx, dy = dx * reach / length, dy * reach / length
        return last.box.shifted(dx, dy)

    def add(self, t: float, detection: Detection, appearance: Appearance, rate: float) -> None:
        self.observations.append(Observation(t, detection.box, detection.confidence))
        self.appearance = blend(self.appearance, appearance, rate)
        self.label_votes[detection.label] += detection.confidence


class Tracker:
    """Online part: feed each sampled frame's detections in time order."""

    def __init__(self, params: TrackingParams) -> None:
        self.params = params
        self._active: list[Tracklet] = []
        self._ended: list[Tracklet] = []
        self._next_id = 0
        self._shot = 0

    def update(
        self, t: float, detections: Sequence[Detection], appearances: Sequence[Appearance]
    ) -> list[int | None]:
        """Assign detections to tracklets; returns each detection's tracklet id (or None)."""
        if len(detections) != len(appearances):
            raise ValueError("one appearance per detection")
        p = self.params
        self._retire(lambda tr: t - tr.last.t > p.max_gap_s)
        assigned: list[int | None] = [None] * len(detections)
        strong = [j for j, d in enumerate(detections) if d.confidence >= p.high_confidence]
        weak = [j for j, d in enumerate(detections) if d.confidence < p.high_confidence]
        free = list(range(len(self._active)))
        for group in (strong, weak):
            pairs = self._associate(t, free, group, detections, appearances)
            for i, j in pairs:
                track = self._active[i]
                track.add(t, detections[j], appearances[j], p.appearance_update)
                assigned[j] = track.id
            taken = {i for i, _ in pairs}
            free = [i for i in free if i not in taken]
        for j in strong:
            if assigned[j] is None:
                assigned[j] = self._start(t, detections[j], appearances[j])
        return assigned

    def cut(self) -> None:
        """A shot change: nothing on screen now continues what was on screen before."""
        self._retire(lambda _: True)
        self._shot += 1

    def finish(self) -> list[Tracklet]:
        self._retire(lambda _: True)
        return sorted(self._ended, key=lambda tr: (tr.first.t, tr.id))

    def _start(self, t: float, detection: Detection, appearance: Appearance) -> int:
        track = Tracklet(self._next_id, self._shot, [], appearance)
        track.add(t, detection, appearance, rate=0.0)
        self._next_id += 1
        self._active.append(track)
        return track.id

    def _retire(self, ended: Callable[[Tracklet], bool]) -> None:
        keep: list[Tracklet] = []
        for track in self._active:
            (self._ended if ended(track) else keep).append(track)
        self._active = keep

    def _associate(
        self,
        t: float,
        tracks: list[int],
        group: list[int],
        detections: Sequence[Detection],
        appearances: Sequence[Appearance],
    ) -> list[tuple[int, int]]:
        if not tracks or not group:
            return []
        p = self.params
        cost = np.full((len(tracks), len(group)), _NO)
        for row, i in enumerate(tracks):
            track = self._active[i]
            predicted = track.predicted(t)
            for col, j in enumerate(group):
                box = detections[j].box
                sim = similarity(track.appearance, appearances[j])
                if sim < p.veto_similarity:
                    continue
                overlap = iou(predicted, box)
                if overlap < p.min_iou:
                    near = center_distance(predicted, box) <= p.max_shift * max(
                        predicted.diagonal, box.diagonal
                    )
                    if not (near and sim >= p.min_similarity):
                        continue
                cost[row, col] = (1 - p.appearance_weight) * (1 - overlap) + (
                    p.appearance_weight * (1 - sim)
                )
        rows, cols = linear_sum_assignment(cost)
        return [(tracks[r], group[c]) for r, c in zip(rows, cols, strict=True) if cost[r, c] < _NO]


@dataclass(frozen=True, slots=True)
class Track:
    """One object over the whole video: stitched tracklets, ready to be published."""

    tracklet_ids: tuple[int, ...]
    observations: tuple[Observation, ...]
    label: str
    confidence: float  # mean over its observations

    @property
    def first_t(self) -> float:
        return self.observations[0].t

    @property
    def last_t(self) -> float:
        return self.observations[-1].t

    @property
    def duration_s(self) -> float:
        return self.last_t - self.first_t


def stitch(tracklets: Sequence[Tracklet], params: TrackingParams) -> list[Track]:
    """Join tracklets of one object split by an occlusion or a missed detection.

    Only within one shot, only forward in time with a short gap, only between pieces
    that look alike and end near where the next begins; each piece joins at most one
    before and one after, the most alike pairs first.
    """
    candidates: list[tuple[float, int, int]] = []
    for a in tracklets:
        for b in tracklets:
            gap = b.first.t - a.last.t
            if a.id == b.id or a.shot != b.shot or not 0 < gap <= params.stitch_max_gap_s:
                continue
            sim = similarity(a.appearance, b.appearance)
            near = center_distance(a.last.box, b.first.box) <= params.stitch_max_shift
            if sim >= params.stitch_min_similarity and near:
                candidates.append((sim, a.id, b.id))
    successor: dict[int, int] = {}
    predecessor: dict[int, int] = {}
    for _, a_id, b_id in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
        if a_id not in successor and b_id not in predecessor:
            successor[a_id] = b_id
            predecessor[b_id] = a_id
    by_id = {tr.id: tr for tr in tracklets}
    tracks = []
    for head in sorted(tr.id for tr in tracklets if tr.id not in predecessor):
        chain = [by_id[head]]
        while chain[-1].id in successor:
            chain.append(by_id[successor[chain[-1].id]])
        tracks.append(_merge(chain))
    return sorted(tracks, key=lambda tr: (tr.first_t, tr.tracklet_ids))


def _merge(chain: list[Tracklet]) -> Track:
    observations = tuple(o for tr in chain for o in tr.observations)
    votes: dict[str, float] = defaultdict(float)
    for tr in chain:
        for label, weight in tr.label_votes.items():
            votes[label] += weight
    label = max(sorted(votes), key=lambda k: votes[k])
    confidence = float(np.mean([o.confidence for o in observations]))
    return Track(tuple(tr.id for tr in chain), observations, label, confidence)


@dataclass(frozen=True, slots=True)
class TrackFilter:
    """What it takes to publish a track: a glimpse is more often a false tag than a product."""

    min_frames: int = 3
    min_duration_s: float = 0.5
    min_confidence: float = 0.0

    def keeps(self, track: Track) -> bool:
        return (
            len(track.observations) >= self.min_frames
            and track.duration_s >= self.min_duration_s
            and track.confidence >= self.min_confidence
        )
