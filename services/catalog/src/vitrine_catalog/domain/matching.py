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

That threshold-and-margin rule looks at two numbers. A track says more: how its crops
agree, how far the best product stands above the pack, how many crops there are. The
verifier (:class:`MatchVerifier`) weighs all of it with a logistic model fitted on
validation tracks (``training/fit_verifier.py``) and tags when its confidence clears a
calibrated cut.
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
    return mean_scores(crop_scores(crops, images_by_product))


def crop_scores(
    crops: Vectors, images_by_product: Mapping[str, Vectors]
) -> dict[str, npt.NDArray[np.float32]]:
    """Each product's best cosine against its images, crop by crop: (crops,) a product."""
    return {
        product_id: (crops @ images.T).max(axis=1)
        for product_id, images in images_by_product.items()
        if len(images) and len(crops)
    }


def mean_scores(per_crop: Mapping[str, npt.NDArray[np.float32]]) -> dict[str, float]:
    """Each product's mean over the crops of :func:`crop_scores`: its score."""
    return {product_id: float(scores.mean()) for product_id, scores in per_crop.items()}


# How many products after the best one make "the pack" it must stand out from.
COHORT_SIZE = 5
# The figures of a track's evidence a verifier may weigh (MatchEvidence.features).
EVIDENCE_FEATURES = (
    "score",
    "margin",
    "lead_over_cohort",
    "log_crops",
    "vote",
    "spread",
    "worst",
)


@dataclass(frozen=True, slots=True)
class MatchEvidence:
    """What a track's crops say about its best product: the figures the verifier weighs."""

    score: float  # the best product's mean over crops (score_products)
    runner_up: float  # the next product's, 0 when there is none
    cohort: float  # the mean of the next COHORT_SIZE products' (0 when there are none)
    crops: int
    vote: float  # share of crops whose own best product is the best one
    spread: float  # standard deviation over crops of the best product's cosine
    worst: float  # the best product's cosine on its least like crop

    @classmethod
    def of(cls, per_crop: Mapping[str, npt.NDArray[np.float32]]) -> tuple[str, MatchEvidence]:
        """The best product of ``per_crop`` (:func:`crop_scores`, not empty) and its evidence."""
        ranked = sorted(per_crop, key=lambda p: float(per_crop[p].mean()), reverse=True)
        best = per_crop[ranked[0]]
        means = [float(per_crop[p].mean()) for p in ranked[1 : 1 + COHORT_SIZE]]
        table = np.stack([per_crop[p] for p in ranked])  # (products, crops)
        return ranked[0], cls(
            score=float(best.mean()),
            runner_up=means[0] if means else 0.0,
            cohort=float(np.mean(means)) if means else 0.0,
            crops=len(best),
            vote=float((table.argmax(axis=0) == 0).mean()),
            spread=float(best.std()),
            worst=float(best.min()),
        )

    def features(self) -> dict[str, float]:
        """The named inputs of a verifier, in the order of EVIDENCE_FEATURES."""
        values = (
            self.score,
            self.score - self.runner_up,
            self.score - self.cohort,
            math.log(max(self.crops, 1)),
            self.vote,
            self.spread,
            self.worst,
        )
        return dict(zip(EVIDENCE_FEATURES, values, strict=True))


@dataclass(frozen=True, slots=True)
class MatchVerifier:
    """A logistic model over :meth:`MatchEvidence.features`: the probability that a
    track's best product is really on screen, and the cut above which it is tagged.

    Fitted on ShopBench validation tracks by ``training/fit_verifier.py``, which writes it
    as JSON (``to_dict``); the inputs are standardized with the fit's means and scales."""

    features: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    cut: float  # least confidence that tags

    def __post_init__(self) -> None:
        sizes = {len(self.features), len(self.means), len(self.scales), len(self.weights)}
        if len(sizes) != 1:
            raise ValueError("a verifier needs a mean, a scale and a weight for each feature")
        unknown = set(self.features) - set(EVIDENCE_FEATURES)
        if unknown:
            raise ValueError(f"unknown verifier features: {sorted(unknown)}")
        if any(scale <= 0 for scale in self.scales):
            raise ValueError("verifier scales must be positive")
        if not 0 < self.cut < 1:
            raise ValueError("the verifier's cut is a probability between 0 and 1")

    def confidence(self, evidence: MatchEvidence) -> float:
        values = evidence.features()
        z = self.bias + sum(
            w * (values[name] - mean) / scale
            for name, mean, scale, w in zip(
                self.features, self.means, self.scales, self.weights, strict=True
            )
        )
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> MatchVerifier:
        def floats(key: str) -> tuple[float, ...]:
            values = data[key]
            if not isinstance(values, list):
                raise ValueError(f"verifier {key} must be a list")
            return tuple(float(v) for v in values)

        names = data["features"]
        if not isinstance(names, list):
            raise ValueError("verifier features must be a list")
        return cls(
            features=tuple(str(n) for n in names),
            means=floats("means"),
            scales=floats("scales"),
            weights=floats("weights"),
            bias=float(data["bias"]),  # type: ignore[arg-type]
            cut=float(data["cut"]),  # type: ignore[arg-type]
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "features": list(self.features),
            "means": list(self.means),
            "scales": list(self.scales),
            "weights": list(self.weights),
            "bias": self.bias,
            "cut": self.cut,
        }


@dataclass(frozen=True, slots=True)
class Judgement:
    """What the matcher made of a track, tagged or not: kept so that an operator can see
    why a track was not tagged, and so the threshold can be calibrated on real tracks."""

    best: MatchDecision | None  # the best product and its runner-up, whatever their scores
    decision: MatchDecision | None  # the same, when convincing enough to tag
    crops: int = 0  # crops the track was judged on
    confidence: float | None = None  # the verifier's, where it judged

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


def verify(
    per_crop: Mapping[str, npt.NDArray[np.float32]],
    shops: Mapping[str, str],
    verifier: MatchVerifier,
) -> Judgement:
    """The best product of :func:`crop_scores` and whether the verifier is convinced."""
    if not per_crop:
        return Judgement(None, None, 0)
    best_id, evidence = MatchEvidence.of(per_crop)
    best = MatchDecision(best_id, shops[best_id], evidence.score, evidence.runner_up)
    confidence = verifier.confidence(evidence)
    return Judgement(
        best, best if confidence >= verifier.cut else None, evidence.crops, round(confidence, 6)
    )
