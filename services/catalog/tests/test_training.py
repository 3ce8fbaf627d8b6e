"""The training script's loss pieces (the script itself runs offline, on ShopBench)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
import torch
from catalog_scripts import training_script


@pytest.fixture(scope="module")
def train_matcher() -> ModuleType:
    return training_script("train_matcher")


def _masked_max(queries: torch.Tensor, gallery: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
    """The definition: each query's best cosine among each product's images."""
    similarity = queries @ gallery.T
    return torch.stack(
        [similarity[:, owner[:, p]].amax(dim=1) for p in range(owner.shape[1])], dim=1
    )


@pytest.mark.parametrize(
    "labels",
    [
        [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3],  # in product order, 3 each: the reshape path
        [0, 1, 0, 1, 2, 2, 3, 3, 0, 1, 2, 3],  # 3 each but interleaved
        [0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3],  # in order, uneven counts
    ],
)
def test_product_scores_is_the_best_image_of_each_product(
    train_matcher: ModuleType, labels: list[int]
) -> None:
    generator = torch.Generator().manual_seed(len(labels) + labels[1])
    queries = torch.nn.functional.normalize(torch.randn(20, 8, generator=generator), dim=1)
    gallery = torch.nn.functional.normalize(torch.randn(12, 8, generator=generator), dim=1)
    owner = torch.nn.functional.one_hot(torch.tensor(labels), 4).bool()

    scores = train_matcher.product_scores(queries, gallery, owner)

    assert torch.equal(scores, _masked_max(queries, gallery, owner))


def test_product_scores_pass_gradients_to_the_best_images_only(
    train_matcher: ModuleType,
) -> None:
    gallery = torch.eye(4, requires_grad=True)  # two products, two images each
    queries = torch.tensor([[1.0, 0.2, 0.0, 0.0]])
    owner = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 1]), 2).bool()

    train_matcher.product_scores(queries, gallery, owner).sum().backward()

    assert gallery.grad is not None
    # Product 0's best image is image 0 (1.0 > 0.2), so image 1 learns nothing from it.
    assert gallery.grad[0].tolist() == pytest.approx([1.0, 0.2, 0.0, 0.0])
    assert gallery.grad[1].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_tracked_crops_are_labelled_by_what_their_boxes_follow(
    train_matcher: ModuleType, tmp_path: Path
) -> None:
    """A track on a product teaches that product; one on a distractor or on nothing
    teaches 'not for sale' (None); every crop of a track carries its track's label."""
    from PIL import Image

    root = tmp_path / "train-1"
    (root / "groundtruth" / "train").mkdir(parents=True)
    truth = {
        "video_id": "v0",
        "width": 100,
        "height": 100,
        "objects": [
            {"object_id": 0, "kind": "product", "product_id": "p0001"},
            {"object_id": 1, "kind": "distractor", "product_id": None},
        ],
        "frames": [
            {
                "index": 0,
                "time_ms": 0,
                "boxes": [
                    {"object_id": 0, "box": [0, 0, 40, 40], "visible": 1.0},
                    {"object_id": 1, "box": [60, 60, 100, 100], "visible": 1.0},
                ],
            }
        ],
    }
    (root / "groundtruth" / "train" / "v0.json").write_text(json.dumps(truth))
    kept = tmp_path / "tracks"
    (kept / "crops").mkdir(parents=True)
    for n in range(5):
        Image.new("RGB", (32, 32), (n * 40, 0, 0)).save(kept / "crops" / f"{n}.jpg")

    def detected(track_id: str, x: float, y: float, crops: list[int]) -> dict[str, object]:
        return {
            "video_id": "v0",
            "track_id": track_id,
            "first_seen_ms": 0,
            "last_seen_ms": 0,
            "boxes": [{"at_ms": 0, "x": x, "y": y, "width": 0.4, "height": 0.4}],
            "crops": [{"file": f"crops/{n}.jpg"} for n in crops],
        }

    tracks = [
        detected("t0", 0.0, 0.0, [0, 1]),  # on the product
        detected("t1", 0.6, 0.6, [2]),  # on the distractor
        detected("t2", 0.3, 0.6, [3, 4]),  # on neither: background
    ]
    (kept / "tracks.json").write_text(
        json.dumps({"dataset": str(root), "videos": [{"video_id": "v0", "detected": tracks}]})
    )

    dataset, views = train_matcher.tracked_crops(kept)

    assert dataset == root.resolve()
    assert [(v.group, v.product_id) for v in views] == [
        ("v0/t0", "p0001"),
        ("v0/t0", "p0001"),
        ("v0/t1", None),
        ("v0/t2", None),
        ("v0/t2", None),
    ]
    assert views[3].image.getpixel((16, 16))[0] > views[0].image.getpixel((16, 16))[0]
