"""The same behaviour from both VectorIndex adapters.

The server adapter runs against qdrant-client's local mode (``location=":memory:"``), which
speaks the server API in-process; the edge adapter runs the embedded engine in tmp_path.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from qdrant_client import AsyncQdrantClient

from vitrine_catalog.adapters.vector_index import (
    IndexTuning,
    QdrantEdgeIndex,
    QdrantServerIndex,
    VectorHit,
    VectorIndex,
    VectorPoint,
    open_vector_index,
)

DIM = 8

# Local mode warns that payload indexes are a no-op there; the server honours them.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning"),
    pytest.mark.filterwarnings("ignore:Local mode performs exact:UserWarning"),
]


def _unit(*components: float) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[: len(components)] = components
    return vector / np.linalg.norm(vector)


def _point(product: str, shop: str, vector: np.ndarray, point_id: str | None = None) -> VectorPoint:
    return VectorPoint(
        id=point_id or str(uuid.uuid4()),
        vector=vector,
        payload={"product_id": product, "shop_id": shop, "position": 0},
    )


@pytest_asyncio.fixture(params=["edge", "server", "edge-int8"])
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorIndex]:
    vector_index: VectorIndex
    if request.param == "edge":
        vector_index = QdrantEdgeIndex(str(tmp_path / "shard"), DIM)
    elif request.param == "edge-int8":
        tuning = IndexTuning(hnsw_m=8, hnsw_ef_construct=32, search_ef=64, quantization="int8")
        vector_index = QdrantEdgeIndex(str(tmp_path / "shard"), DIM, tuning=tuning)
    else:
        client = AsyncQdrantClient(location=":memory:")
        tuning = IndexTuning(search_ef=64, quantization="int8")
        vector_index = QdrantServerIndex(client, "product_images", DIM, tuning)
    await vector_index.ensure_collection()
    await vector_index.ensure_collection()  # idempotent
    try:
        yield vector_index
    finally:
        await vector_index.close()


@pytest.mark.asyncio
async def test_search_returns_best_match_first(index: VectorIndex) -> None:
    query = _unit(1.0)
    exact = _point("p-exact", "s1", query)
    near = _point("p-near", "s1", _unit(1.0, 0.3))
    far = _point("p-far", "s2", _unit(0.2, 1.0))
    opposite = _point("p-opposite", "s2", _unit(-1.0))
    await index.upsert([far, opposite, exact, near])

    hits = await index.search(query, limit=10)

    assert [hit.payload["product_id"] for hit in hits] == [
        "p-exact",
        "p-near",
        "p-far",
        "p-opposite",
    ]
    assert isinstance(hits[0], VectorHit)
    assert (hits[0].id, hits[0].payload) == (exact.id, exact.payload)
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[-1].score == pytest.approx(-1.0, abs=1e-5)  # cosine, not a distance
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert len(await index.search(query, limit=2)) == 2
    assert await index.count() == 4


@pytest.mark.asyncio
async def test_search_accepts_plain_sequences(index: VectorIndex) -> None:
    point = VectorPoint(id=str(uuid.uuid4()), vector=[0.5] * DIM, payload={"product_id": "p"})
    await index.upsert([point])

    hits = await index.search([1.0] * DIM, limit=1)

    assert hits[0].id == point.id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)


@pytest.mark.asyncio
async def test_shop_filter(index: VectorIndex) -> None:
    await index.upsert(
        [
            _point("p1", "shop-a", _unit(1.0)),
            _point("p2", "shop-b", _unit(1.0, 0.1)),
            _point("p3", "shop-a", _unit(0.0, 1.0)),
        ]
    )

    in_a = await index.search(_unit(1.0), limit=10, shop_id="shop-a")
    in_b = await index.search(_unit(1.0), limit=10, shop_id="shop-b")
    nowhere = await index.search(_unit(1.0), limit=10, shop_id="no-such-shop")

    assert [hit.payload["product_id"] for hit in in_a] == ["p1", "p3"]
    assert [hit.payload["product_id"] for hit in in_b] == ["p2"]
    assert nowhere == []


@pytest.mark.asyncio
async def test_delete_by_product_removes_every_image_of_it(index: VectorIndex) -> None:
    await index.upsert(
        [
            _point("gone", "s1", _unit(1.0)),
            _point("gone", "s1", _unit(1.0, 0.5)),
            _point("kept", "s1", _unit(1.0, 1.0)),
        ]
    )

    await index.delete_by_product("gone")
    await index.delete_by_product("never-indexed")  # no-op, no error

    assert await index.count() == 1
    hits = await index.search(_unit(1.0), limit=10)
    assert [hit.payload["product_id"] for hit in hits] == ["kept"]


@pytest.mark.asyncio
async def test_upsert_same_id_replaces_point(index: VectorIndex) -> None:
    point_id = str(uuid.uuid4())
    await index.upsert([_point("p1", "s1", _unit(1.0), point_id)])
    await index.upsert([_point("p1", "s2", _unit(0.0, 1.0), point_id.upper())])
    await index.upsert([])

    hits = await index.search(_unit(0.0, 1.0), limit=5)

    assert await index.count() == 1
    assert hits[0].id == point_id  # ids come back canonical (lower case)
    assert hits[0].payload["shop_id"] == "s2"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)


@pytest.mark.asyncio
async def test_rejects_bad_input(index: VectorIndex) -> None:
    with pytest.raises(ValueError, match="dimensions"):
        await index.upsert([_point("p", "s", np.ones(DIM + 1, dtype=np.float32))])
    with pytest.raises(ValueError, match="NaN"):
        await index.upsert([_point("p", "s", np.full(DIM, np.nan, dtype=np.float32))])
    with pytest.raises(ValueError, match="UUID"):
        await index.upsert([_point("p", "s", _unit(1.0), point_id="product-1")])
    with pytest.raises(ValueError, match="dimensions"):
        await index.search(np.ones(DIM - 1), limit=1)
    with pytest.raises(ValueError, match="limit"):
        await index.search(_unit(1.0), limit=0)
    assert await index.count() == 0


@pytest.mark.asyncio
async def test_batch_search_threshold_vectors_and_delete_by_id(index: VectorIndex) -> None:
    a, b, c = (
        _point("pa", "s", _unit(1.0)),
        _point("pb", "s", _unit(1.0, 1.0)),
        _point("pc", "s", _unit(0.0, 0.0, 1.0)),
    )
    await index.upsert([a, b, c])

    batch = await index.search_batch([_unit(1.0), _unit(0.2, 0.0, 1.0)], limit=2)
    close = await index.search(_unit(1.0), limit=10, score_threshold=0.5)
    nothing = await index.search_batch([_unit(0.0, 1.0)], limit=5, score_threshold=0.99)
    stored = await index.vectors([a.id, c.id, str(uuid.uuid4())])

    assert [[h.id for h in hits] for hits in batch] == [[a.id, b.id], [c.id, a.id]]
    assert [h.id for h in close] == [a.id, b.id]  # cos(a, b) = 0.71; c is orthogonal
    assert nothing == [[]]
    assert await index.search_batch([], limit=3) == []
    assert set(stored) == {a.id, c.id}
    np.testing.assert_allclose(stored[a.id], _unit(1.0), atol=1e-5)

    await index.delete([a.id, str(uuid.uuid4())])
    await index.delete([])
    assert await index.count() == 2
    assert await index.vectors([a.id]) == {}


def test_index_tuning_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="oversampling"):
        IndexTuning(oversampling=0.5)
    with pytest.raises(ValueError, match="hnsw_m"):
        IndexTuning(hnsw_m=1)


# --------------------------------------------------------------------------- edge only


@pytest.mark.asyncio
async def test_edge_shard_persists_across_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "shard")
    first = QdrantEdgeIndex(path, DIM)
    await first.ensure_collection()
    points = [_point(f"p{i}", "s1", _unit(1.0, i / 10)) for i in range(5)]
    await first.upsert(points)
    await first.delete_by_product("p4")
    await first.close()
    await first.close()  # idempotent

    reopened = QdrantEdgeIndex(path, DIM)
    await reopened.ensure_collection()
    try:
        assert await reopened.count() == 4
        hits = await reopened.search(_unit(1.0), limit=10, shop_id="s1")
        assert [hit.id for hit in hits] == [point.id for point in points[:4]]
        assert hits[0].payload == {"product_id": "p0", "shop_id": "s1", "position": 0}
    finally:
        await reopened.close()


@pytest.mark.asyncio
async def test_edge_requires_open_shard_and_matching_dimension(tmp_path: Path) -> None:
    path = str(tmp_path / "shard")
    index = QdrantEdgeIndex(path, DIM)
    with pytest.raises(RuntimeError, match="ensure_collection"):
        await index.count()
    await index.ensure_collection()
    # The engine locks its WAL: a second handle on the same directory is refused.
    with pytest.raises(Exception, match="WAL"):
        await QdrantEdgeIndex(path, DIM).ensure_collection()
    await index.close()

    with pytest.raises(Exception, match="vector size"):
        await QdrantEdgeIndex(path, DIM * 2).ensure_collection()


@pytest.mark.asyncio
@pytest.mark.parametrize("in_subprocess", [True, False], ids=["subprocess", "in-thread"])
async def test_edge_optimize_keeps_data_searchable(tmp_path: Path, in_subprocess: bool) -> None:
    index = QdrantEdgeIndex(
        str(tmp_path / "shard"), DIM, optimize_threshold=20, optimize_in_subprocess=in_subprocess
    )
    await index.ensure_collection()
    rng = np.random.default_rng(7)
    points = [_point(f"p{i}", f"s{i % 3}", rng.standard_normal(DIM)) for i in range(30)]
    try:
        await index.upsert(points[:10])
        await index.delete_by_product("p0")
        await index.upsert(points[10:])  # crosses the threshold: optimizes before returning
        assert await index.optimize() in (True, False)

        assert await index.count() == 29
        hits = await index.search(np.asarray(points[5].vector), limit=3, shop_id="s2")
        assert hits[0].id == points[5].id
        assert all(hit.payload["shop_id"] == "s2" for hit in hits)
    finally:
        await index.close()


@pytest.mark.asyncio
async def test_edge_builds_hnsw_without_blocking_the_event_loop(tmp_path: Path) -> None:
    """Enough 1280-d vectors to pass the engine's indexing threshold (~10 MB)."""
    dim, total = 1280, 2600
    index = QdrantEdgeIndex(str(tmp_path / "shard"), dim, optimize_threshold=2500)
    await index.ensure_collection()
    rng = np.random.default_rng(11)
    vectors = rng.standard_normal((total, dim)).astype(np.float32)
    points = [
        VectorPoint(id=str(uuid.uuid4()), vector=vector, payload={"product_id": f"p{i}"})
        for i, vector in enumerate(vectors)
    ]
    try:
        await index.upsert(points[:2400])
        gaps: list[float] = []
        stop = asyncio.Event()

        async def heartbeat() -> None:
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(heartbeat())
        started = time.perf_counter()
        await index.upsert(points[2400:])  # crosses 2500: HNSW build in a child process
        elapsed = time.perf_counter() - started
        stop.set()
        await ticker

        # Built in-thread, the loop would stall for the whole build (measured: one gap of
        # 3.3 s in 3.3 s); from the child it never stalls for long (max gap 0.09 s in 2.3 s).
        assert max(gaps) < 0.5 * elapsed
        info = await index._call(lambda shard: shard.info())  # peek: HNSW really built
        assert info.indexed_vectors_count >= 2400
        hits = await index.search(vectors[1234], limit=1)
        assert hits[0].id == points[1234].id
    finally:
        await index.close()


# --------------------------------------------------------------------------- factory


@pytest.mark.asyncio
async def test_open_vector_index_picks_backend(tmp_path: Path) -> None:
    embedded = open_vector_index(
        qdrant_url=None, qdrant_path=str(tmp_path), collection="images", dimension=DIM
    )
    assert isinstance(embedded, QdrantEdgeIndex)
    await embedded.ensure_collection()
    await embedded.close()
    assert (tmp_path / "images" / "edge_config.json").exists()

    remote = open_vector_index(
        qdrant_url="https://127.0.0.1:1",
        qdrant_path=str(tmp_path),
        collection="images",
        dimension=DIM,
        api_key="secret",
    )
    assert isinstance(remote, QdrantServerIndex)
    assert isinstance(remote, VectorIndex)
    await remote.close()
