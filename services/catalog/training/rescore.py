"""Score the catalog's matcher offline on the detector's real tracks of validation splits.

    python -m vitrine_stack eval --split val --seed 9     # keeps .vitrine/tracks-seed-9-val
    python services/catalog/training/rescore.py .vitrine/tracks-seed-{7,9,10,11}-val \\
        [--head path/to/matcher-head.npz] [--colour-weight 0.5] [--colour-centre 0.4] \\
        [--crop-framing pad|centre] [--studio-framing box|whole] [--short-track-penalty 0.5] \\
        [--studio-rotations 0 20 -20]

`make eval` keeps, beside its report, every track the detector published (boxes, time
span, crop files) with the catalog's judgement of it. This script embeds those crops and
the dataset's studio images the way the catalog does (same network, preprocessing, head
and object colour), scores every track against every product exactly as
`vitrine_catalog.domain.matching` does, and prints what `eval --calibrate` prints: the
pooled best recall at precision 0.95 over the splits, with its threshold and margin; with
three splits or more, also out of sample (each split judged at the threshold and margin
the others chose: a fairer comparison of two heads than in-sample figures). So a
new head or matching rule is judged on the detector's real tracks in a minute, without
running the pipeline again. Network features are cached in each folder; only the head and
the colour weight are applied per run. Never give it a test split.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vitrine_catalog.adapters import colour
from vitrine_catalog.adapters.embedder import (
    DEFAULT_HEAD,
    ImageEmbedder,
    MatcherHead,
    ObjectColour,
    View,
    decode_image,
)
from vitrine_catalog.domain.matching import score_products, short_track_handicap
from vitrine_catalog.settings import CatalogSettings
from vitrine_shopbench import scoring
from vitrine_stack import evaluation, shopbench

Array = npt.NDArray[np.float32]


@dataclass
class Views:
    """Network features (pooled + colour descriptor) and object colours of some images."""

    features: Array
    object_colours: Array

    def vectors(self, head: MatcherHead, object_colour: ObjectColour | None) -> Array:
        projected = head.project(self.features)
        return object_colour.append(projected, self.object_colours) if object_colour else projected


def _views(
    embedder: ImageEmbedder,
    files: list[Path],
    view: View,
    centre: float,
    cache: Path,
    turn: int = 0,
) -> Views:
    if cache.exists():
        with np.load(cache) as saved:
            return Views(saved["features"], saved["object_colours"])
    features, colours = [], []
    for start in range(0, len(files), 32):
        images = [decode_image(f.read_bytes(), i) for i, f in enumerate(files[start : start + 32])]
        features.append(embedder.features(images, view=view, turn=turn))
        colours.append(np.stack([colour.object_colour(im, view, centre) for im in images]))
    views = Views(np.concatenate(features), np.concatenate(colours))
    np.savez(cache, features=views.features, object_colours=views.object_colours)
    return views


@dataclass
class Split:
    """One kept validation run: its tracks, ground truth and catalog, with their views."""

    name: str
    videos: list[dict[str, Any]]
    truths: dict[str, dict[str, Any]]
    lookalikes: dict[str, list[str]]
    products: list[str]  # bench product id of every studio view, in order
    studio: Views  # every studio image as it is, then turned by each further angle
    crops: Views  # every track's crops, in the order of the tracks

    @classmethod
    def load(cls, folder: Path, embedder: ImageEmbedder, centre: float) -> Split:
        kept = json.loads((folder / "tracks.json").read_text())
        root = Path(kept["dataset"])
        catalog = json.loads((root / "catalog" / "catalog.json").read_text())
        images = [(p["product_id"], root / i) for p in catalog["products"] for i in p["images"]]
        crop_files = [
            folder / c["file"] for v in kept["videos"] for t in v["detected"] for c in t["crops"]
        ]
        split = folder.name.rsplit("-", 1)[-1]
        if split == "test":
            raise SystemExit(f"{folder}: a test split; study matchers on validation splits only")
        studio = [
            _views(
                embedder,
                [f for _, f in images],
                "studio",
                centre,
                folder / f"studio-{embedder.network_version}-{centre}-{embedder.studio_framing}"
                f"{f'-turn{turn}' if turn else ''}.npz",
                turn,
            )
            for turn in embedder.studio_rotations
        ]
        return cls(
            name=folder.name,
            videos=kept["videos"],
            truths=shopbench.truths(root, split),
            lookalikes=scoring.lookalikes_of(catalog),
            products=[p for p, _ in images] * len(studio),
            studio=Views(
                np.concatenate([v.features for v in studio]),
                np.concatenate([v.object_colours for v in studio]),
            ),
            crops=_views(
                embedder,
                crop_files,
                "crop",
                centre,
                folder / f"crops-{embedder.network_version}-{centre}-{embedder.crop_framing}.npz",
            ),
        )

    def grid(
        self,
        head: MatcherHead,
        object_colour: ObjectColour | None,
        short_track_penalty: float,
        full_track_crops: int,
    ) -> dict[str, list[int]]:
        """(right, tagged, on screen) pair counts under every threshold and margin, each
        track held to the score its crop count needs, as the catalog holds it."""
        gallery = self.studio.vectors(head, object_colour)
        crops = self.crops.vectors(head, object_colour)
        by_product: dict[str, list[int]] = {}
        for i, product in enumerate(self.products):
            by_product.setdefault(product, []).append(i)
        images = {p: gallery[rows] for p, rows in by_product.items()}
        judged: list[tuple[str, dict[str, Any], str, float, float, float]] = []
        tracks: list[scoring.Track] = []
        at = 0
        for video in self.videos:
            for track in video["detected"]:
                n = len(track["crops"])
                scores = score_products(crops[at : at + n], images)
                at += n
                ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
                handicap = short_track_handicap(
                    n, short_track_penalty=short_track_penalty, full_track_crops=full_track_crops
                )
                judged.append((video["video_id"], track, *ranked[0], ranked[1][1], handicap))
                tracks.append(evaluation.track_of(track))
        grid: dict[str, list[int]] = {}
        for threshold in evaluation.THRESHOLDS:
            for margin in evaluation.MARGINS:
                tags = [
                    scoring.Tag(v, t["track_id"], p, t["first_seen_ms"], t["last_seen_ms"], s)
                    for v, t, p, s, runner_up, handicap in judged
                    if s >= threshold + handicap and s - runner_up >= margin
                ]
                report = scoring.score(self.truths, tracks, tags, self.lookalikes)
                counts = [report.correct_pairs, report.tagged_pairs, report.truth_pairs]
                grid[f"{threshold:.2f}/{margin:.2f}"] = counts
        return grid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", help="kept tracks of val splits")
    parser.add_argument("--head", type=Path, default=DEFAULT_HEAD)
    parser.add_argument("--colour-weight", type=float, default=0.5)
    parser.add_argument("--colour-centre", type=float, default=0.4)
    defaults = CatalogSettings.model_fields
    parser.add_argument(
        "--input-size",
        type=int,
        default=defaults["embed_input_size"].default,
        help="EMBED_INPUT_SIZE: the network's input side, px",
    )
    parser.add_argument(
        "--crop-framing", choices=["pad", "centre"], default=defaults["match_crop_framing"].default
    )
    parser.add_argument(
        "--short-track-penalty",
        type=float,
        default=defaults["match_short_track_penalty"].default,
        help="MATCH_SHORT_TRACK_PENALTY (0: one threshold for every track)",
    )
    parser.add_argument(
        "--full-track-crops", type=int, default=defaults["max_crops_per_track"].default
    )
    parser.add_argument(
        "--studio-framing",
        choices=["whole", "box"],
        default=defaults["match_studio_framing"].default,
    )
    parser.add_argument(
        "--studio-rotations",
        type=int,
        nargs="+",
        default=list(defaults["match_studio_rotations"].default),
        help="MATCH_STUDIO_ROTATIONS: turns each studio shot is scored at, 0 first",
    )
    args = parser.parse_args(argv)

    embedder = ImageEmbedder.load(
        threads=2,
        input_size=args.input_size,
        crop_framing=args.crop_framing,
        studio_framing=args.studio_framing,
        studio_rotations=tuple(args.studio_rotations),
    )
    head = MatcherHead.load(args.head)
    object_colour = (
        ObjectColour(args.colour_weight, args.colour_centre) if args.colour_weight > 0 else None
    )
    grids = []
    for folder in args.folders:
        split = Split.load(folder, embedder, args.colour_centre)
        grids.append(
            split.grid(head, object_colour, args.short_track_penalty, args.full_track_crops)
        )
        best = evaluation.choose_calibration(grids[-1:])
        print(f"{split.name}: {best}")
    best = evaluation.choose_calibration(grids)
    print(f"pooled over {len(grids)}: {best}")
    if len(grids) > 2:
        # Out of sample: each split judged at the settings the others chose.
        held_out = evaluation.leave_one_split_out(grids)
        right, tagged, on_screen = held_out
        print(
            f"  leave one split out: right, tagged, on screen = {tuple(held_out)}"
            f" (precision {right / max(tagged, 1):.3f}, recall {right / max(on_screen, 1):.3f})"
        )
    if best is not None:
        default = (
            float(defaults["match_score_threshold"].default),
            float(defaults["match_margin"].default),
        )
        for threshold, margin in ((best.threshold, best.margin), default):
            pooled = evaluation.pooled_counts(grids, threshold, margin)
            print(f"  at {threshold:.2f}/{margin:.2f}: right, tagged, on screen = {pooled}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
