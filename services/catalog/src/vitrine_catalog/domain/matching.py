"""Deciding whether a tracked object is a catalog product, from its crops.

Two stages, as in any retrieve-then-rerank search. The vector index proposes candidates:
the products among each crop's nearest studio images. Each candidate is then scored
exactly: the mean, over the track's crops, of its best cosine against that product's own
images. Scoring only the hits (0 where a product fell out of a crop's top few) punished
the right product whenever its colourway look-alikes filled a crop's hits, and cost most
of the recall lost on ShopBench. A track is judged on all its crops, not one, so a
product seen well in one crop but unlike the others still scores low; and because false
tags cost more than missed ones, a match also needs a margin over the runner-up product.
And the fewer crops a track was judged on, the higher it must score: a mean over two
crops is noisier than over eight, and a brief glimpse is more often blur, a fragment or
background than a product (see :func:`score_needed`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


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


def candidates(hits_per_crop: Sequence[Sequence[ImageHit]]) -> dict[str, str]:
    """The products proposed by any crop's image hits, with their shops."""
    return {hit.product_id: hit.shop_id for hits in hits_per_crop for hit in hits}


def score_products(crops: Vectors, images_by_product: Mapping[str, Vectors]) -> dict[str, float]:
    """Mean over the crops of each product's best cosine against its images.

    `crops` is (crops, d) and every product's images (images, d), all unit vectors."""
    scores: dict[str, float] = {}
    for product_id, images in images_by_product.items():
        if len(images) and len(crops):
            scores[product_id] = float((crops @ images.T).max(axis=1).mean())
    return scores


@dataclass(frozen=True, slots=True)
class Judgement:
    """What the matcher made of a track, tagged or not: kept so that an operator can see
    why a track was not tagged, and so the threshold can be calibrated on real tracks."""

    best: MatchDecision | None  # the best product and its runner-up, whatever their scores
    decision: MatchDecision | None  # the same, when convincing enough to tag
    crops: int = 0  # crops the track was judged on

    @property
    def best_score(self) -> float | None:
        return self.best.score if self.best else None


def short_track_handicap(crops: int, *, short_track_penalty: float, full_track_crops: int) -> float:
    """How much more than the threshold a track judged on ``crops`` crops must score.

    Nothing for a full track (``full_track_crops`` crops or more); for fewer,
    ``short_track_penalty * (1/sqrt(crops) - 1/sqrt(full_track_crops))``: the shape of a
    mean's standard error. With a penalty of 0.5 and full tracks of 8 crops, a track of 4
    crops needs 0.073 more, one of 2 crops 0.177 more.
    """
    full = max(full_track_crops, 1)
    n = min(max(crops, 1), full)
    return short_track_penalty * (1 / math.sqrt(n) - 1 / math.sqrt(full))


def score_needed(
    threshold: float, crops: int, *, short_track_penalty: float, full_track_crops: int
) -> float:
    """The least score a track judged on ``crops`` crops must reach to be tagged:
    ``threshold`` plus its :func:`short_track_handicap`."""
    return threshold + short_track_handicap(
        crops, short_track_penalty=short_track_penalty, full_track_crops=full_track_crops
    )


def judge(
    scores: Mapping[str, float],
    shops: Mapping[str, str],
    *,
    threshold: float,
    margin: float,
    crops: int = 1,
    short_track_penalty: float = 0.0,
    full_track_crops: int = 1,
) -> Judgement:
    """The best product and whether it is convincing: at least :func:`score_needed` for a
    track of ``crops`` crops (``threshold`` for a full one), and ahead of the runner-up by
    ``margin``."""
    if not scores:
        return Judgement(None, None, crops)
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    best_id, best_score = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    best = MatchDecision(best_id, shops[best_id], best_score, runner_up)
    needed = score_needed(
        threshold,
        crops,
        short_track_penalty=short_track_penalty,
        full_track_crops=full_track_crops,
    )
    convincing = best_score >= needed and best_score - runner_up >= margin
    return Judgement(best, best if convincing else None, crops)
