"""Deciding whether a tracked object is a catalog product, from its crops' image hits.

A track is judged on all its crops, not one: a product's score is the mean, over the
crops, of its best image similarity in each crop (0 where it was not among the hits).
A product seen well in one crop but absent from the others scores low, which keeps
look-alikes and passing glimpses from becoming tags. False tags cost more than missed
ones, so a match also needs a margin over the runner-up product.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ImageHit:
    product_id: str
    shop_id: str
    score: float


@dataclass(frozen=True, slots=True)
class TrackRef:
    """A tracked object of a video: what a tag needs to know about it."""

    video_id: str
    track_id: str
    creator_id: str
    first_seen_ms: int
    last_seen_ms: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.video_id, self.track_id)


@dataclass(frozen=True, slots=True)
class MatchDecision:
    product_id: str
    shop_id: str
    score: float
    runner_up_score: float


def score_products(hits_per_crop: Sequence[Sequence[ImageHit]]) -> dict[str, float]:
    """Mean over crops of each product's best image score in that crop."""
    if not hits_per_crop:
        return {}
    totals: dict[str, float] = defaultdict(float)
    for hits in hits_per_crop:
        best: dict[str, float] = {}
        for hit in hits:
            best[hit.product_id] = max(best.get(hit.product_id, -1.0), hit.score)
        for product_id, score in best.items():
            totals[product_id] += score
    return {product_id: total / len(hits_per_crop) for product_id, total in totals.items()}


@dataclass(frozen=True, slots=True)
class Judgement:
    """What the matcher made of a track, tagged or not: kept so that an operator can see
    why a track was not tagged, and so the threshold can be calibrated on real tracks."""

    best: MatchDecision | None  # the best product and its runner-up, whatever their scores
    decision: MatchDecision | None  # the same, when convincing enough to tag

    @property
    def best_score(self) -> float | None:
        return self.best.score if self.best else None


def judge(
    hits_per_crop: Sequence[Sequence[ImageHit]], *, threshold: float, margin: float
) -> Judgement:
    scores = score_products(hits_per_crop)
    if not scores:
        return Judgement(None, None)
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    best_id, best_score = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    shop_id = next(h.shop_id for hits in hits_per_crop for h in hits if h.product_id == best_id)
    best = MatchDecision(best_id, shop_id, best_score, runner_up)
    convincing = best_score >= threshold and best_score - runner_up >= margin
    return Judgement(best, best if convincing else None)


def decide(
    hits_per_crop: Sequence[Sequence[ImageHit]], *, threshold: float, margin: float
) -> MatchDecision | None:
    """The product this track shows, or None when no product is convincing enough."""
    return judge(hits_per_crop, threshold=threshold, margin=margin).decision
