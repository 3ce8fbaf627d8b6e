"""Detector fixtures: a migrated schema, a media store in a temporary folder, and the
detector behind the runtime's real consumer (with the colour detector standing in for
YOLO)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
from detector_videos import ColourDetector, Harness, SpyStore, build_harness

from vitrine_detector.app import MIGRATIONS
from vitrine_runtime.db import Database


@pytest.fixture
async def db(database: object) -> Database:
    db = cast(Database, database)
    await db.migrate(MIGRATIONS)
    return db


@pytest.fixture
def store(tmp_path: Path) -> SpyStore:
    return SpyStore(tmp_path / "media")


@pytest.fixture
def harness(db: Database, store: SpyStore) -> Harness:
    return build_harness(db, store, ColourDetector())
