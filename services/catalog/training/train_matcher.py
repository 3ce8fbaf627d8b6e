"""Train the catalog's matcher head on ShopBench, offline, on the CPU (a few minutes).

    python -m vitrine_shopbench generate --seed 7 --out /tmp/shopbench/full-7 --scale full \\
        --splits val --jobs 2
    python -m vitrine_shopbench generate --seed 7 --out /tmp/shopbench/train-7 --scale full \\
        --splits train --jobs 2
    python -m vitrine_shopbench generate --seed 8 --out /tmp/shopbench/train-8 --scale full \\
        --splits train --jobs 2
    python services/catalog/training/train_matcher.py --val /tmp/shopbench/full-7 \\
        --train /tmp/shopbench/train-7 --train /tmp/shopbench/train-8

    # optional: the detector's real tracks of the training videos as more queries
    python -m vitrine_stack eval --split train --seed 7 --dataset /tmp/shopbench/train-7
    python services/catalog/training/train_matcher.py ... --train /tmp/shopbench/train-7 \\
        --tracks .vitrine/tracks-seed-7-train

What it learns: one linear map from an image's features (EfficientNet-Lite0's pooled
ImageNet features, exactly as the service computes them, and the colour descriptor) to a
256-d vector, such that a view of a product in a video lands nearest that product's
studio images. Nothing in it names a product: it is a metric, not a classifier, so it
serves products it never saw (20 % of ShopBench's products never appear in a training
video; the validation figures count them apart) and catalogs it never saw (two seeds,
two catalogs, train it).

Views it learns from, per training catalog:
- crops of every object in the training videos, cut from the ground-truth boxes the way
  the detector cuts them (margin, jitter), every 0.3 s; distractor crops too, taught to
  stay far from every product;
- synthetic views of every studio image: the product cut from its plain backdrop, turned,
  scaled down, put on a photo, lit with a gain and a colour cast, blurred and JPEG'd. Only
  studio pixels: a new product has nothing else;
- the same views recoloured (hue turned by 60-300 degrees, or the product's shading
  painted in another colour, which also changes white, grey and black ones): the product
  in a colour it is not sold in, which must score low against the product it was made
  from (a camera sees such near misses all the time; colour is what tells them apart).

The validation split (never trained on) reports, beside the plain ImageNet features:
per-crop top-1, and per object ("track" of 4 crops spread over its appearance, as the
detector sends them) top-1, score and margin. The test split is never read.
Writes one head, matcher-head.npz (weights and a card) and matcher-head.json (the card),
into `--out`. The shipped head is an ensemble of four such runs, stacked by
`stack_heads.py` (see the model card): give each run an `--out` of its own.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import torch
from PIL import Image, ImageFilter

from vitrine_catalog.adapters import embedder as embedding
from vitrine_catalog.adapters.colour import product_mask
from vitrine_catalog.adapters.embedder import (
    DEFAULT_INPUT_SIZE,
    FEATURES,
    ImageEmbedder,
    MatcherHead,
)
from vitrine_shopbench import images as photos
from vitrine_shopbench import scoring
from vitrine_shopbench.config import SPLIT_ONLY_PHOTOS
from vitrine_stack import shopbench
from vitrine_stack.evaluation import track_of

HEAD_NAME = "matcher-head"

CROP_EVERY_MS = 300
CROP_MIN_VISIBLE = 0.5
CROP_MIN_SIDE = 24
CROP_MARGIN = 0.08  # the detector's (CropParams.margin)
TRACK_CROPS = 4  # the detector's crops per track
# Backgrounds of synthetic views: photos the training videos may show, never those kept
# for validation or test.
BACKGROUNDS = tuple(
    name for name in photos.PHOTOS if not any(name in v for v in SPLIT_ONLY_PHOTOS.values())
)


@dataclass(frozen=True)
class View:
    image: Image.Image
    product_id: str | None  # None: a distractor, something no shop sells
    group: str  # the object it shows ("video/object"), for validation tracks


@dataclass
class Catalog:
    root: Path
    image_paths: list[Path]
    image_products: list[str]
    held_out: set[str]

    @classmethod
    def of(cls, root: Path) -> Catalog:
        data = json.loads((root / "catalog" / "catalog.json").read_text())
        paths, products = [], []
        for product in data["products"]:
            for image in product["images"]:
                paths.append(root / image)
                products.append(product["product_id"])
        held = {p["product_id"] for p in data["products"] if p["held_out_from_train"]}
        return cls(root, paths, products, held)

    @property
    def products(self) -> list[str]:
        return sorted(set(self.image_products))


# --- views -----------------------------------------------------------------------------


def video_crops(
    root: Path, split: str, rng: random.Random, every_ms: int = CROP_EVERY_MS
) -> list[View]:
    """Crops of the objects in a split's videos, cut from ground-truth boxes in one frame
    every ``every_ms`` (each cut jittered: nearby frames still give different views)."""
    views = []
    for truth_path in sorted((root / "groundtruth" / split).glob("*.json")):
        truth = json.loads(truth_path.read_text())
        kinds = {o["object_id"]: o for o in truth["objects"]}
        frames = {f["index"]: f for f in truth["frames"]}
        last = -(10**9)
        with av.open(str(root / truth["file"])) as container:
            for index, frame in enumerate(container.decode(video=0)):
                seen = frames.get(index)
                if seen is None or seen["time_ms"] - last < every_ms:
                    continue
                last = seen["time_ms"]
                picture = None
                for box in seen["boxes"]:
                    x1, y1, x2, y2 = box["box"]
                    if box["visible"] < CROP_MIN_VISIBLE or min(x2 - x1, y2 - y1) < CROP_MIN_SIDE:
                        continue
                    picture = picture or frame.to_image()
                    crop = picture.crop(_jittered(box["box"], picture.size, rng))
                    obj = kinds[box["object_id"]]
                    group = f"{truth['video_id']}/{box['object_id']}"
                    views.append(View(_bounded(crop), obj["product_id"], group))
    return views


def tracked_crops(folder: Path) -> tuple[Path, list[View]]:
    """The crops of the detector's real tracks of a training split (kept by an eval run
    on it), each labelled by what its boxes follow in the ground truth: a product, or
    None for a distractor or nothing at all. Loose boxes, blur and a switch of object
    included: what the catalog will be shown, which ground-truth boxes are not."""
    kept = json.loads((folder / "tracks.json").read_text())
    root = Path(kept["dataset"]).resolve()
    ground_truth = shopbench.truths(root, "train")
    views = []
    for video in kept["videos"]:
        truth = ground_truth[video["video_id"]]
        products = {o["object_id"]: o["product_id"] for o in truth["objects"]}
        for detected in video["detected"]:
            followed = scoring.followed_object(truth, track_of(detected))
            product = products.get(followed) if followed is not None else None
            group = f"{video['video_id']}/{detected['track_id']}"
            for crop in detected["crops"]:
                image = Image.open(folder / crop["file"]).convert("RGB")
                views.append(View(image, product, group))
    return root, views


def _jittered(
    box: list[int], size: tuple[int, int], rng: random.Random
) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    margin = CROP_MARGIN + rng.uniform(-0.05, 0.08)
    dx, dy = rng.uniform(-0.06, 0.06) * w, rng.uniform(-0.06, 0.06) * h
    return (
        int(max(0, x1 - margin * w + dx)),
        int(max(0, y1 - margin * h + dy)),
        int(min(size[0], x2 + margin * w + dx)),
        int(min(size[1], y2 + margin * h + dy)),
    )


def _bounded(image: Image.Image, side: int = 512) -> Image.Image:
    k = side / max(image.size)
    if k >= 1:
        return image.copy()
    return image.resize((round(image.width * k), round(image.height * k)))


def recoloured(studio: Image.Image, rng: random.Random) -> Image.Image:
    """The product of a studio shot in another colour (its backdrop left as it was)."""
    rgb = np.asarray(studio.convert("RGB"), np.float32)
    if rng.random() < 0.5:  # turn the hue
        hsv = np.asarray(studio.convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(int) + rng.randint(43, 213)) % 256
        painted = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"), np.float32)
    else:  # paint the shading in a colour of its own
        shade = rgb.mean(axis=2, keepdims=True) / 255.0
        colour = np.array([rng.uniform(0.1, 1.0) for _ in range(3)], np.float32) * 255.0
        painted = shade * colour * rng.uniform(0.8, 1.6)
    mask = np.asarray(product_mask(studio), np.float32)[..., None] / 255.0
    mixed = painted * mask + rgb * (1.0 - mask)
    return Image.fromarray(np.clip(mixed, 0, 255).astype(np.uint8))


def synthetic_view(studio: Image.Image, rng: random.Random) -> Image.Image:
    """A studio shot made to look like a detector's crop of a video frame."""
    mask = product_mask(studio)
    box = mask.getbbox() or (0, 0, studio.width, studio.height)
    product, alpha = studio.crop(box), mask.crop(box)
    spun = rng.random() < 0.35  # turned in the plane, as objects in the videos are
    angle = rng.uniform(-180, 180) if spun else rng.uniform(-20, 20)
    product = product.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    alpha = alpha.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    side = rng.choice([48, 64, 96, 128, 192, 256])
    k = side / max(product.size)
    size = (max(8, round(product.width * k)), max(8, round(product.height * k)))
    product, alpha = product.resize(size), alpha.resize(size)
    margin = CROP_MARGIN + rng.uniform(-0.05, 0.1)
    canvas_size = (round(size[0] * (1 + 2 * margin)), round(size[1] * (1 + 2 * margin)))
    background = photos.photo(rng.choice(BACKGROUNDS))
    scale = rng.uniform(0.2, 1.0)
    region = (
        max(canvas_size[0], round(background.width * scale)),
        max(canvas_size[1], round(background.height * scale)),
    )
    x0 = rng.randint(0, max(0, background.width - region[0]))
    y0 = rng.randint(0, max(0, background.height - region[1]))
    canvas = background.crop((x0, y0, x0 + region[0], y0 + region[1])).resize(canvas_size)
    canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0, 3)))
    offset = (
        (canvas_size[0] - size[0]) // 2 + rng.randint(-3, 3),
        (canvas_size[1] - size[1]) // 2 + rng.randint(-3, 3),
    )
    canvas.paste(product, offset, alpha)
    gain = rng.uniform(0.45, 0.6) if rng.random() < 0.15 else rng.uniform(0.7, 1.25)
    cast = np.array([rng.uniform(0.85, 1.15) for _ in range(3)], np.float32)
    lit = np.asarray(canvas, np.float32) * gain * cast
    canvas = Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8))
    if rng.random() < 0.4:
        canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.8)))
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=rng.randint(35, 85))
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


# --- features --------------------------------------------------------------------------


class Features:
    """Features of images, cached on disk by content: reruns only pay for new views."""

    def __init__(self, embedder: ImageEmbedder, cache: Path) -> None:
        self.embedder = embedder
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)

    def __call__(
        self, images: list[Image.Image], tag: str, view: embedding.View = "studio"
    ) -> npt.NDArray[np.float32]:
        framing = f"{self.embedder.crop_framing}:{self.embedder.studio_framing}"
        network = self.embedder.network_version
        digest = hashlib.sha256(f"{tag}:{view}:{framing}:{network}".encode())
        for image in images[:64]:
            digest.update(image.tobytes()[:4096])
        path = self.cache / f"{digest.hexdigest()[:20]}-{len(images)}.npy"
        if path.exists():
            return np.asarray(np.load(path), np.float32)
        parts = [
            self.embedder.features(images[i : i + 32], view=view) for i in range(0, len(images), 32)
        ]
        features = np.concatenate(parts) if parts else np.empty((0, FEATURES), np.float32)
        np.save(path, features)
        return features


# --- training --------------------------------------------------------------------------


@dataclass
class Group:
    """One catalog's training material."""

    queries: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]  # product index, -1 for a distractor
    gallery: npt.NDArray[np.float32]  # studio images
    gallery_labels: npt.NDArray[np.int64]
    products: int
    near_misses: npt.NDArray[np.float32]  # recoloured views...
    near_miss_sources: npt.NDArray[np.int64]  # ...of these products


def product_scores(
    queries: torch.Tensor, gallery: torch.Tensor, owner: torch.Tensor
) -> torch.Tensor:
    """Each query's best similarity to each product's images: (queries, products).

    ``owner`` is (images, products), True where an image shows the product."""
    similarity = queries @ gallery.T
    images, products = owner.shape
    per_product = images // max(products, 1)
    even = torch.arange(images) // per_product if per_product else None
    if (
        even is not None
        and images == per_product * products
        and bool((owner.float().argmax(dim=1) == even).all())
    ):
        # Images in product order, as many per product (ShopBench's catalogs): a reshape
        # instead of a (queries, images, products) masked tensor, several times faster.
        return similarity.view(len(queries), products, per_product).amax(dim=2)
    masked = torch.where(owner[None], similarity[:, :, None], torch.tensor(-2.0))
    return masked.amax(dim=1)


def train_head(groups: list[Group], args: argparse.Namespace) -> npt.NDArray[np.float32]:
    torch.manual_seed(args.seed)
    dropout = torch.nn.Dropout(args.dropout)
    linear = torch.nn.Linear(FEATURES, args.dimension, bias=False)
    optimizer = torch.optim.AdamW(linear.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    owners = [
        torch.nn.functional.one_hot(torch.from_numpy(g.gallery_labels), g.products).bool()
        for g in groups
    ]
    for step in range(args.steps):
        loss = torch.zeros(())
        for group, owner in zip(groups, owners, strict=True):
            pick = torch.randint(0, len(group.queries), (args.batch,))
            queries = torch.nn.functional.normalize(
                linear(dropout(torch.from_numpy(group.queries[pick.numpy()]))), dim=1
            )
            gallery = torch.nn.functional.normalize(
                linear(dropout(torch.from_numpy(group.gallery))), dim=1
            )
            scores = product_scores(queries, gallery, owner)
            labels = torch.from_numpy(group.labels[pick.numpy()])
            sold = labels >= 0
            # A view must be nearer its own product than any other, by the softmax...
            loss = loss + torch.nn.functional.cross_entropy(
                scores[sold] / args.temperature, labels[sold]
            )
            # ...and something no shop sells must stay below `distractor_ceiling`...
            if (~sold).any():
                loss = loss + torch.relu(scores[~sold].amax(dim=1) - args.distractor_ceiling).mean()
            # ...and so must a product in a colour it is not sold in, against that product.
            pick = torch.randint(0, len(group.near_misses), (args.batch // 2,))
            misses = torch.nn.functional.normalize(
                linear(dropout(torch.from_numpy(group.near_misses[pick.numpy()]))), dim=1
            )
            sources = torch.from_numpy(group.near_miss_sources[pick.numpy()])
            against_source = product_scores(misses, gallery, owner).gather(1, sources[:, None])
            loss = loss + torch.relu(against_source - args.distractor_ceiling).mean()
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        if step % 250 == 0 or step == args.steps - 1:
            print(f"  step {step:5d}  loss {loss.item():.4f}", flush=True)
    weights: npt.NDArray[np.float32] = linear.weight.detach().numpy().T.copy()
    return weights


# --- validation ------------------------------------------------------------------------


def _unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def validate(
    project: Any,
    gallery: npt.NDArray[np.float32],
    gallery_products: list[str],
    views: list[View],
    queries: npt.NDArray[np.float32],
    held_out: set[str],
) -> dict[str, Any]:
    """Per-crop and per-track top-1 on validation views; scores and margins."""
    products = sorted(set(gallery_products))
    owner = np.array([[p == q for q in products] for p in gallery_products])
    similarity = project(queries) @ project(gallery).T  # views x images
    per_product = np.stack(
        [similarity[:, owner[:, j]].max(axis=1) for j in range(len(products))], 1
    )
    sold = [i for i, v in enumerate(views) if v.product_id is not None]
    crop_top1 = float(
        np.mean([products[int(per_product[i].argmax())] == views[i].product_id for i in sold])
    )
    by_group: dict[str, list[int]] = defaultdict(list)
    for i, view in enumerate(views):
        by_group[view.group].append(i)
    tracks = []
    for members in by_group.values():
        spread = [members[int(k)] for k in np.linspace(0, len(members) - 1, TRACK_CROPS)]
        scores = per_product[sorted(set(spread))].mean(axis=0)
        order = np.argsort(-scores)
        truth = views[members[0]].product_id
        tracks.append((truth, products[order[0]], float(scores[order[0]]), float(scores[order[1]])))
    shown = [t for t in tracks if t[0] is not None]
    right = [t for t in shown if t[0] == t[1]]
    held = [t for t in shown if t[0] in held_out]
    return {
        "crop_top1": round(crop_top1, 4),
        "crops": len(sold),
        "tracks": len(shown),
        "track_top1": round(len(right) / max(1, len(shown)), 4),
        "held_out_track_top1": round(sum(t[0] == t[1] for t in held) / max(1, len(held)), 4),
        "held_out_tracks": len(held),
        "right_score_mean": round(float(np.mean([t[2] for t in right])), 4) if right else 0.0,
        "right_margin_median": round(float(np.median([t[2] - t[3] for t in right])), 4)
        if right
        else 0.0,
        "wrong_score_max": round(max((t[2] for t in shown if t[0] != t[1]), default=0.0), 4),
        "distractor_score_max": round(max((t[2] for t in tracks if t[0] is None), default=0.0), 4),
    }


# --- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--train",
        type=Path,
        action="append",
        required=True,
        help="a ShopBench dataset with a train split (repeatable)",
    )
    parser.add_argument("--val", type=Path, required=True, help="a dataset with a val split")
    parser.add_argument(
        "--input-size",
        type=int,
        default=DEFAULT_INPUT_SIZE,
        help="the network's input side, px (EMBED_INPUT_SIZE)",
    )
    parser.add_argument(
        "--tracks",
        type=Path,
        action="append",
        default=[],
        help="the detector's kept tracks of a --train dataset's train split (repeatable):"
        " their crops join that catalog's queries",
    )
    parser.add_argument(
        "--crop-every-ms",
        type=int,
        default=CROP_EVERY_MS,
        help="cut training videos' objects every this many ms (jittered each time)",
    )
    parser.add_argument("--synthetic", type=int, default=8, help="synthetic views per image")
    parser.add_argument(
        "--near-misses", type=int, default=4, help="recoloured synthetic views per image"
    )
    parser.add_argument("--dimension", type=int, default=256)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=192)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--temperature", type=float, default=0.07)
    parser.add_argument("--distractor-ceiling", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--members",
        type=int,
        default=1,
        help="train this many heads, seeds --seed, --seed + 1, ... (into --out/seed-N/)"
        " from one preparation of the views: members for stack_heads.py",
    )
    parser.add_argument(
        "--crop-framing",
        choices=["pad", "centre"],
        default="pad",
        help="how video crops are made square (the catalog's MATCH_CROP_FRAMING)",
    )
    parser.add_argument(
        "--studio-framing",
        choices=["whole", "box"],
        default="box",
        help="how studio shots are framed (the catalog's MATCH_STUDIO_FRAMING)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vitrine-matcher-training"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the head and its card")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    torch.set_num_threads(2)
    embedder = ImageEmbedder.load(
        cache_dir=args.workdir / "openvino",
        input_size=args.input_size,
        crop_framing=args.crop_framing,
        studio_framing=args.studio_framing,
    )
    features = Features(embedder, args.workdir / "features")
    rng = random.Random(args.seed)

    tracked: dict[Path, list[View]] = defaultdict(list)
    track_folders: dict[Path, list[Path]] = defaultdict(list)
    for folder in args.tracks:
        dataset, views = tracked_crops(folder)
        tracked[dataset] += views
        track_folders[dataset].append(folder)
    strays = sorted(str(d) for d in set(tracked) - {root.resolve() for root in args.train})
    if strays:
        raise SystemExit(f"--tracks of datasets not given as --train: {strays}")
    groups: list[Group] = []
    counts: list[dict[str, Any]] = []
    for root in args.train:
        catalog = Catalog.of(root.resolve())
        index = {p: i for i, p in enumerate(catalog.products)}
        studio = [Image.open(p).convert("RGB") for p in catalog.image_paths]
        crops = video_crops(catalog.root, "train", rng, args.crop_every_ms)
        real = tracked.get(catalog.root, [])
        crops += real
        # The cache key names the tracks folders: its content digest sees only the first views.
        sources = sorted(str(f.resolve()) for f in track_folders.get(catalog.root, []))
        synthetic = [synthetic_view(s, rng) for _ in range(args.synthetic) for s in studio]
        near_misses = [
            synthetic_view(recoloured(s, rng), rng) for _ in range(args.near_misses) for s in studio
        ]
        crop_features = features(
            [v.image for v in crops], f"crops:{root}:{args.crop_every_ms}:{sources}", "crop"
        )
        # Synthetic views imitate the detector's crops: framed as crops are.
        synthetic_features = features(synthetic, f"synthetic:{root}:{args.synthetic}", "crop")
        near_miss_features = features(near_misses, f"near-misses:{root}:{args.near_misses}", "crop")
        labels = [index[v.product_id] if v.product_id else -1 for v in crops]
        labels += [index[p] for _ in range(args.synthetic) for p in catalog.image_products]
        groups.append(
            Group(
                queries=np.concatenate([crop_features, synthetic_features]),
                labels=np.array(labels, np.int64),
                gallery=features(studio, f"studio:{root}"),
                gallery_labels=np.array([index[p] for p in catalog.image_products], np.int64),
                products=len(catalog.products),
                near_misses=near_miss_features,
                near_miss_sources=np.array(
                    [index[p] for _ in range(args.near_misses) for p in catalog.image_products],
                    np.int64,
                ),
            )
        )
        counts.append(
            {
                "dataset": root.name,
                "products": len(catalog.products),
                "studio_images": len(studio),
                "video_crops": len(crops) - len(real),
                "tracked_crops": len(real),
                "distractor_crops": sum(v.product_id is None for v in crops),
                "synthetic_views": len(synthetic),
                "recoloured_views": len(near_misses),
            }
        )
        print(f"{root}: {counts[-1]}", flush=True)

    val_catalog = Catalog.of(args.val.resolve())
    val_views = video_crops(val_catalog.root, "val", random.Random(args.seed + 1))
    val_queries = features([v.image for v in val_views], f"val:{args.val}", "crop")
    val_gallery = features(
        [Image.open(p).convert("RGB") for p in val_catalog.image_paths], f"studio:{args.val}"
    )
    baseline = validate(
        lambda x: _unit(x[:, :1280]),
        val_gallery,
        val_catalog.image_products,
        val_views,
        val_queries,
        val_catalog.held_out,
    )
    first_seed = args.seed
    for member in range(args.members):
        # Members differ only in their seed (initialisation, batches, dropout); the views
        # are the same, made once.
        args.seed = first_seed + member
        out = args.out if args.members == 1 else args.out / f"seed-{args.seed}"
        weights = train_head(groups, args)
        head = MatcherHead(weights, HEAD_NAME)
        trained = validate(
            head.project,
            val_gallery,
            val_catalog.image_products,
            val_views,
            val_queries,
            val_catalog.held_out,
        )
        card = {
            "name": HEAD_NAME,
            "maps": f"{FEATURES} features (1280 pooled EfficientNet-Lite0 + colour) to"
            f" {args.dimension}",
            "embedder": embedder.model_version,
            "training": counts,
            "hyperparameters": {
                k: getattr(args, k)
                for k in (
                    "crop_every_ms",
                    "synthetic",
                    "near_misses",
                    "dimension",
                    "steps",
                    "batch",
                    "lr",
                    "weight_decay",
                    "dropout",
                    "temperature",
                    "distractor_ceiling",
                    "seed",
                    "crop_framing",
                    "studio_framing",
                )
            },
            "validation": {
                "dataset": args.val.name,
                "imagenet_features": baseline,
                "head": trained,
            },
            "wall_seconds": round(time.perf_counter() - started, 1),
            "versions": {"python": platform.python_version(), "torch": torch.__version__},
        }
        out.mkdir(parents=True, exist_ok=True)
        MatcherHead(weights, HEAD_NAME, json.dumps(card)).save(out / f"{HEAD_NAME}.npz")
        (out / f"{HEAD_NAME}.json").write_text(json.dumps(card, indent=2) + "\n")
        print(f"{out / HEAD_NAME}.npz:", json.dumps(card["validation"]["head"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
