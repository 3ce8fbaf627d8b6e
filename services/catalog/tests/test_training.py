"""The training script's loss pieces (the script itself runs offline, on ShopBench)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

TRAINING = Path(__file__).resolve().parents[1] / "training" / "train_matcher.py"


@pytest.fixture(scope="module")
def train_matcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_matcher", TRAINING)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_matcher"] = module
    spec.loader.exec_module(module)
    return module


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
