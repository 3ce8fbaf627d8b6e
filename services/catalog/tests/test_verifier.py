"""The verifier: a track's evidence, the logistic model over it, and the shipped model."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from catalog_scripts import training_script

from vitrine_catalog.adapters.verifier import DEFAULT_VERIFIER, load_verifier
from vitrine_catalog.domain.matching import MatchEvidence, MatchVerifier, crop_scores, verify


def unit(degrees: float) -> np.ndarray:
    """A 2-d unit vector at `degrees`: its cosine with unit(0) is cos(degrees)."""
    radians = math.radians(degrees)
    return np.array([math.cos(radians), math.sin(radians)], dtype=np.float32)


def stack(*degrees: float) -> np.ndarray:
    return np.stack([unit(d) for d in degrees])


def cos(degrees: float) -> float:
    return math.cos(math.radians(degrees))


def test_the_evidence_of_a_track_is_read_off_its_crops_by_hand() -> None:
    # Three crops at 0, 20 and 40 degrees; "mug" has images at 0 and 40, "cup" at 30,
    # "vase" at 90. Per crop, each product's best cosine:
    #   mug:  1, cos 20, 1      cup: cos 30, cos 10, cos 10      vase: cos 90, cos 70, cos 50
    per_crop = crop_scores(
        stack(0, 20, 40), {"mug": stack(0, 40), "cup": stack(30), "vase": stack(90)}
    )
    best, evidence = MatchEvidence.of(per_crop)
    mug = [1.0, cos(20), 1.0]
    cup = [cos(30), cos(10), cos(10)]
    vase = [cos(90), cos(70), cos(50)]
    assert best == "mug"
    assert evidence.score == pytest.approx(sum(mug) / 3, abs=1e-6)
    assert evidence.runner_up == pytest.approx(sum(cup) / 3, abs=1e-6)
    assert evidence.cohort == pytest.approx((sum(cup) + sum(vase)) / 6, abs=1e-6)
    assert evidence.crops == 3
    # The middle crop likes cup (cos 10) better than mug (cos 20).
    assert evidence.vote == pytest.approx(2 / 3)
    assert evidence.spread == pytest.approx(float(np.std(mug)), abs=1e-6)
    assert evidence.worst == pytest.approx(cos(20), abs=1e-6)
    features = evidence.features()
    assert features["margin"] == pytest.approx((sum(mug) - sum(cup)) / 3, abs=1e-6)
    assert features["log_crops"] == pytest.approx(math.log(3))


def test_a_product_alone_leads_by_its_whole_score() -> None:
    _, evidence = MatchEvidence.of(crop_scores(stack(0, 10), {"mug": stack(0)}))
    assert evidence.runner_up == 0.0
    assert evidence.cohort == 0.0
    assert evidence.vote == 1.0


def margin_only(cut: float) -> MatchVerifier:
    """Confidence = sigmoid(10 x (margin - 0.1) / 0.5 - 0): a margin of 0.1 is even odds."""
    return MatchVerifier(("margin",), (0.1,), (0.5,), (10.0,), bias=0.0, cut=cut)


def test_the_confidence_is_the_logistic_of_the_standardized_weighted_features() -> None:
    verifier = margin_only(0.5)
    for score, runner_up in ((0.6, 0.5), (0.6, 0.3), (0.6, 0.59)):
        evidence = MatchEvidence(score, runner_up, 0.0, 8, 1.0, 0.0, score)
        z = 10.0 * ((score - runner_up) - 0.1) / 0.5
        assert verifier.confidence(evidence) == pytest.approx(1 / (1 + math.exp(-z)))


@pytest.mark.parametrize(("cut", "tagged"), [(0.5, "mug"), (0.95, None)])
def test_verify_tags_the_best_product_when_the_confidence_clears_the_cut(
    cut: float, tagged: str | None
) -> None:
    # mug leads cup by 1 - cos 30 = 0.134: confidence sigmoid(20 x 0.034) = 0.66.
    per_crop = crop_scores(stack(0, 0), {"mug": stack(0), "cup": stack(30)})
    judgement = verify(per_crop, {"mug": "shop-a", "cup": "shop-b"}, margin_only(cut))
    assert judgement.best is not None
    assert judgement.best.product_id == "mug"
    assert judgement.best.shop_id == "shop-a"
    assert judgement.best.runner_up_score == pytest.approx(cos(30), abs=1e-6)
    assert judgement.confidence == pytest.approx(1 / (1 + math.exp(-20 * (1 - cos(30) - 0.1))))
    assert judgement.crops == 2
    assert (judgement.decision.product_id if judgement.decision else None) == tagged


def test_verify_of_nothing_is_no_guess() -> None:
    judgement = verify({}, {}, margin_only(0.5))
    assert judgement.best is None
    assert judgement.decision is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"features": ["colour"]}, "unknown verifier features"),
        ({"weights": [1.0, 2.0]}, "a mean, a scale and a weight"),
        ({"scales": [0.0]}, "scales must be positive"),
        ({"cut": 1.5}, "between 0 and 1"),
    ],
)
def test_a_malformed_verifier_file_is_refused_naming_the_setting(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = tmp_path / "verifier.json"
    path.write_text(json.dumps({**margin_only(0.5).to_dict(), **change}))
    with pytest.raises(ValueError, match=message) as raised:
        load_verifier(path)
    assert "MATCH_VERIFIER" in str(raised.value)


def test_a_missing_verifier_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="MATCH_VERIFIER"):
        load_verifier(tmp_path / "absent.json")


def test_a_verifier_survives_its_file() -> None:
    verifier = margin_only(0.7)
    assert MatchVerifier.from_dict(json.loads(json.dumps(verifier.to_dict()))) == verifier


def test_the_shipped_verifier_tells_a_product_from_a_look_alike_of_the_pack() -> None:
    """The committed model, on evidence shaped like ShopBench's validation tracks: a
    product seen well in every crop, standing out from the rest of the catalog, is tagged;
    an object that scores as high but as much like the next five products (a thing no
    shop sells that resembles several) is not; nor is a weak match that leads clearly."""
    verifier = load_verifier(DEFAULT_VERIFIER)
    product = MatchEvidence(0.62, 0.40, 0.33, 8, 1.0, 0.08, 0.50)
    like_the_pack = MatchEvidence(0.62, 0.58, 0.56, 8, 0.5, 0.03, 0.55)
    weak = MatchEvidence(0.32, 0.18, 0.15, 8, 1.0, 0.03, 0.27)
    assert verifier.confidence(product) >= verifier.cut
    assert verifier.confidence(like_the_pack) < verifier.cut
    assert verifier.confidence(weak) < verifier.cut


# --- the fitting script ------------------------------------------------------------------


@pytest.fixture(scope="module")
def fit_verifier() -> ModuleType:
    return training_script("fit_verifier")


def synthetic_split(module: ModuleType, seed: int, videos: int = 40) -> Any:
    """Tracks whose right products stand out from the pack by a clear lead over the cohort
    and wrong ones that do not; score alone overlaps, so only the lead separates them."""
    rng = np.random.default_rng(seed)
    tracks = []
    for v in range(videos):
        for right in (True, False):
            score = float(rng.uniform(0.4, 0.7))
            lead = float(rng.normal(0.25 if right else 0.05, 0.05))
            evidence = MatchEvidence(score, score - 0.05, score - lead, 8, 1.0, 0.05, score - 0.1)
            product = f"p{v}" if right else f"x{v}"
            tracks.append(module.Judged(f"v{v}", product, evidence, right))
    return module.SplitTracks(f"s{seed}", tracks, on_screen=videos)


def test_the_fit_finds_the_feature_that_separates_and_the_cut_holds_precision(
    fit_verifier: ModuleType,
) -> None:
    splits = [synthetic_split(fit_verifier, seed) for seed in range(4)]
    x, y = fit_verifier.design([t for s in splits for t in s.tracks])
    model = fit_verifier.fit(x, y, 1.0)
    weights = dict(zip(model.features, model.weights, strict=True))
    assert weights["lead_over_cohort"] > 2 * max(abs(weights["score"]), abs(weights["margin"]))
    cut = fit_verifier.choose_cut(
        list(zip(splits, fit_verifier.cross_fitted(splits, 1.0), strict=True))
    )
    assert cut is not None
    right, tagged, on_screen = fit_verifier.out_of_sample(splits, 1.0)
    assert on_screen == 160
    assert right / tagged >= 0.95
    assert right / on_screen >= 0.9
