"""The catalog's composition root: how it sizes the embedder to the CPU it is given."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from threadpoolctl import threadpool_info

from vitrine_catalog import app
from vitrine_catalog.adapters.embedder import ImageEmbedder
from vitrine_catalog.app import load_embedder
from vitrine_catalog.settings import CatalogSettings
from vitrine_runtime.cores import CpuBudget


@pytest.fixture
def torch_threads() -> Iterator[None]:
    """Loading an embedder with a thread count sets torch's, process-wide: put it back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_cpu_quota_sizes_the_network_not_the_cores_in_sight(
    monkeypatch: pytest.MonkeyPatch, torch_threads: None
) -> None:
    """A pod limited to one CPU on a 64-core node: the network runs one thread, where
    OpenVINO alone would start one per core and be throttled in lockstep."""
    monkeypatch.setattr(app, "cpu_budget", lambda: CpuBudget(visible=64, quota=1.0))
    asked: list[int | None] = []
    load = ImageEmbedder.load

    def recording_load(*args: Any, **kwargs: Any) -> ImageEmbedder:
        asked.append(kwargs.get("threads"))
        return load(*args, **kwargs)

    monkeypatch.setattr(app.ImageEmbedder, "load", recording_load)

    embedder = load_embedder(CatalogSettings(embed_head="none", match_colour_weight=0))

    assert asked == [1]
    assert embedder.inference_threads == 1
    assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {1}


def test_configured_threads_win_over_the_quota(
    monkeypatch: pytest.MonkeyPatch, torch_threads: None
) -> None:
    monkeypatch.setattr(app, "cpu_budget", lambda: CpuBudget(visible=64, quota=1.0))

    embedder = load_embedder(
        CatalogSettings(embed_threads=2, embed_head="none", match_colour_weight=0)
    )

    assert embedder.inference_threads == 2
