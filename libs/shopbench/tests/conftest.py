from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from shopbench_helpers import SEED

from vitrine_shopbench.generate import generate


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small dataset for the whole session (about 20 s of rendering)."""
    root = tmp_path_factory.mktemp("shopbench-small")
    generate(SEED, root, "small", log=lambda _: None)
    return root


@pytest.fixture(scope="session")
def manifest(small: Path) -> dict[str, Any]:
    return json.loads((small / "manifest.json").read_text())


@pytest.fixture(scope="session")
def truths(small: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads((small / v["groundtruth"]).read_text()) for v in manifest["videos"]]


@pytest.fixture(scope="session")
def catalog(small: Path) -> dict[str, Any]:
    return json.loads((small / "catalog" / "catalog.json").read_text())
