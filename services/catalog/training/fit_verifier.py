"""Fit the matcher's verifier on the detector's real tracks of validation splits.

    python -m vitrine_stack eval --split val --seed 9     # keeps .vitrine/tracks-seed-9-val
    python services/catalog/training/fit_verifier.py .vitrine/tracks-seed-{7,9,...}-val \\
        [--out services/catalog/models/match-verifier.json]

Every kept track is scored as the catalog scores it (rescore.py's views: same network,
head and object colour; each crop proposes the products of its `MATCH_CANDIDATES` nearest
studio views, and every proposed product is scored on every crop), its best product's
`MatchEvidence` taken, and labelled by the ground truth: is that product on screen in the
video? A logistic model (L2, standardized inputs) is fitted on all of it, and its cut is
the calibration rule's: the best recall of (video, product) pairs at precision >= 0.95
whose next looser cut holds it too, chosen on cross-fitted confidences (each split's from
a model fitted without it).

Also printed, to judge it: out of sample, each split judged by a model and cut chosen
without it (the cut on the other splits' cross-fitted confidences), beside the threshold
and margin rule judged the same way. Never give it a test split.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rescore import Split  # the same folder: run as a script

from vitrine_catalog.adapters.embedder import DEFAULT_HEAD, ImageEmbedder, MatcherHead, ObjectColour
from vitrine_catalog.domain.matching import (
    EVIDENCE_FEATURES,
    MatchEvidence,
    MatchVerifier,
    crop_scores,
)
from vitrine_catalog.settings import CatalogSettings
from vitrine_stack import evaluation

Matrix = npt.NDArray[np.float64]
CUTS = tuple(round(0.20 + 0.01 * k, 2) for k in range(80))  # 0.20 .. 0.99
TARGET_PRECISION = evaluation.CALIBRATION_PRECISION


@dataclass(frozen=True)
class Judged:
    """One track's best product, its evidence, and whether that product is on screen."""

    video_id: str
    product_id: str
    evidence: MatchEvidence
    right: bool


@dataclass(frozen=True)
class SplitTracks:
    name: str
    tracks: list[Judged]
    on_screen: int  # (video, product) pairs

    def counts(self, accepted: Sequence[bool]) -> tuple[int, int, int]:
        """(right, tagged, on screen) pairs when the tracks marked in ``accepted`` are tagged:
        scoring.score's pair counts, without its per-track work (called thousands of times)."""
        pairs = zip(self.tracks, accepted, strict=True)
        tagged = {(t.video_id, t.product_id, t.right) for t, a in pairs if a}
        return sum(right for *_, right in tagged), len(tagged), self.on_screen


def judged_tracks(split: Split, head: MatcherHead, colour: ObjectColour, hits: int) -> SplitTracks:
    gallery = split.studio.vectors(head, colour)
    crops = split.crops.vectors(head, colour)
    owners = np.array(split.products)
    images = {p: gallery[owners == p] for p in sorted(set(split.products))}
    tracks, at = [], 0
    for video in split.videos:
        truth = split.truths[video["video_id"]]
        on_screen = {p["product_id"] for p in truth["products"]}
        for track in video["detected"]:
            vectors = crops[at : at + len(track["crops"])]
            at += len(track["crops"])
            nearest = np.argsort(-(vectors @ gallery.T), axis=1)[:, :hits]
            proposed = {p: images[p] for p in set(owners[nearest].ravel())}
            best, evidence = MatchEvidence.of(crop_scores(vectors, proposed))
            tracks.append(Judged(video["video_id"], best, evidence, best in on_screen))
    pairs = sum(len(t["products"]) for t in split.truths.values())
    return SplitTracks(split.name, tracks, pairs)


def design(tracks: Sequence[Judged]) -> tuple[Matrix, Matrix]:
    # features() is ordered as EVIDENCE_FEATURES
    x = np.array([list(t.evidence.features().values()) for t in tracks], np.float64)
    y = np.array([t.right for t in tracks], np.float64)
    return x, y


def fit(x: Matrix, y: Matrix, l2: float) -> MatchVerifier:
    """Logistic regression by Newton's method; the cut is set later (0.5 until then)."""
    means, scales = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([(x - means) / scales, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.diag([*([l2] * len(EVIDENCE_FEATURES)), 0.0])
    for _ in range(50):
        p = 1 / (1 + np.exp(-z @ w))
        gradient = z.T @ (p - y) + penalty @ w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return MatchVerifier(
        EVIDENCE_FEATURES, tuple(means), tuple(scales), tuple(w[:-1]), float(w[-1]), cut=0.5
    )


def confidences(verifier: MatchVerifier, split: SplitTracks) -> list[float]:
    return [verifier.confidence(t.evidence) for t in split.tracks]


def choose_cut(scored: Sequence[tuple[SplitTracks, list[float]]]) -> float | None:
    """The calibration rule over cuts: best pooled recall at the target precision whose
    next looser cut holds the precision too."""

    def pooled(cut: float) -> tuple[float, float]:
        right = tagged = on_screen = 0
        for split, conf in scored:
            r, t, o = split.counts([c >= cut for c in conf])
            right, tagged, on_screen = right + r, tagged + t, on_screen + o
        return (right / tagged if tagged else 0.0), right / max(on_screen, 1)

    best: tuple[float, float] | None = None  # (recall, cut)
    for looser, cut in itertools.pairwise(CUTS):
        precision, recall = pooled(cut)
        if precision < TARGET_PRECISION or pooled(looser)[0] < TARGET_PRECISION:
            continue
        if best is None or recall > best[0]:
            best = (recall, cut)
    return None if best is None else best[1]


def fitted_without(splits: Sequence[SplitTracks], l2: float) -> Callable[[int], MatchVerifier]:
    def without(index: int) -> MatchVerifier:
        x, y = design([t for i, s in enumerate(splits) if i != index for t in s.tracks])
        return fit(x, y, l2)

    return without


def cross_fitted(splits: Sequence[SplitTracks], l2: float) -> list[list[float]]:
    """Each split's confidences from a model fitted on the others."""
    without = fitted_without(splits, l2)
    return [confidences(without(i), s) for i, s in enumerate(splits)]


def out_of_sample(splits: Sequence[SplitTracks], l2: float) -> tuple[int, int, int]:
    """Each split judged by a model and cut chosen on the other splits alone."""
    totals = [0, 0, 0]
    for i, held in enumerate(splits):
        rest = [s for j, s in enumerate(splits) if j != i]
        cut = choose_cut(list(zip(rest, cross_fitted(rest, l2), strict=True)))
        model = fitted_without(splits, l2)(i)
        accepted = (
            [False] * len(held.tracks)
            if cut is None
            else [c >= cut for c in confidences(model, held)]
        )
        totals = [a + b for a, b in zip(totals, held.counts(accepted), strict=True)]
    return totals[0], totals[1], totals[2]


def _line(counts: tuple[int, int, int]) -> str:
    right, tagged, on_screen = counts
    return (
        f"{right} of {tagged} tagged right, {on_screen} on screen"
        f" (precision {right / max(tagged, 1):.3f}, recall {right / max(on_screen, 1):.3f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", help="kept tracks of val splits")
    parser.add_argument("--out", type=Path, help="where to write the verifier (JSON)")
    parser.add_argument("--l2", type=float, default=1.0, help="ridge on standardized weights")
    args = parser.parse_args(argv)
    if len(args.folders) < 4:
        parser.error("fitting and judging out of sample needs four splits or more")

    settings = CatalogSettings()
    embedder = ImageEmbedder.load(
        threads=2,
        precision=settings.embed_precision,  # EMBED_PRECISION=f32: as an AVX2-only CPU
        input_size=settings.embed_input_size,
        crop_framing=settings.match_crop_framing,
        studio_framing=settings.match_studio_framing,
        studio_rotations=tuple(settings.match_studio_rotations),
    )
    head = MatcherHead.load(Path(settings.embed_head) if settings.embed_head else DEFAULT_HEAD)
    colour = ObjectColour(settings.match_colour_weight, settings.match_colour_centre)
    splits, rule_grids = [], []
    for folder in args.folders:
        split = Split.load(folder, embedder, settings.match_colour_centre)
        splits.append(judged_tracks(split, head, colour, settings.match_candidates))
        # The threshold rule on the same tracks, as rescore.py judges it.
        rule_grids.append(
            split.grid(
                head, colour, settings.match_short_track_penalty, settings.max_crops_per_track
            )
        )
        print(f"{folder.name}: {len(splits[-1].tracks)} tracks", flush=True)

    shipped = evaluation.pooled_counts(
        rule_grids, settings.match_score_threshold, settings.match_margin
    )
    rule_held = evaluation.leave_one_split_out(rule_grids)
    print(f"threshold and margin at the shipped values, pooled: {_line(shipped)}")
    print(f"threshold and margin, leave one split out:        {_line(rule_held)}")
    held = out_of_sample(splits, args.l2)
    print(f"verifier, leave one split out:                    {_line(held)}")

    cut = choose_cut(list(zip(splits, cross_fitted(splits, args.l2), strict=True)))
    if cut is None:
        print("no cut reaches the target precision: nothing written")
        return 1
    x, y = design([t for s in splits for t in s.tracks])
    model = fit(x, y, args.l2)
    verifier = MatchVerifier(
        model.features, model.means, model.scales, model.weights, model.bias, cut
    )
    right = tagged = on_screen = 0
    for split in splits:
        r, t, o = split.counts([c >= cut for c in confidences(verifier, split)])
        right, tagged, on_screen = right + r, tagged + t, on_screen + o
    print(f"verifier fitted on all, cut {cut:.2f}, pooled: {_line((right, tagged, on_screen))}")
    weights = dict(zip(EVIDENCE_FEATURES, np.round(verifier.weights, 2), strict=True))
    print("weights (standardized):", weights)
    if args.out:
        card = {
            **verifier.to_dict(),
            "fitted_on": [f.name for f in args.folders],
            "tracks": len(y),
            "l2": args.l2,
            "out_of_sample": {"right": held[0], "tagged": held[1], "on_screen": held[2]},
            "threshold_rule_out_of_sample": dict(
                zip(("right", "tagged", "on_screen"), rule_held, strict=True)
            ),
            "embedding": embedder.network_version,
            "head": str(settings.embed_head),
        }
        args.out.write_text(json.dumps(card, indent=2) + "\n")
        print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
