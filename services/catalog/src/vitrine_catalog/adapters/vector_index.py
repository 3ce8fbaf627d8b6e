"""Vector index port for product image embeddings, with two Qdrant adapters.

* :class:`QdrantServerIndex` talks to a Qdrant server (production, shared by replicas).
* :class:`QdrantEdgeIndex` runs the embedded Qdrant Edge engine in-process on one shard
  directory (single-node deployments, development, tests).

Both use cosine similarity (higher score = more similar) and UUID point ids. Every point
should carry ``product_id`` (for :meth:`VectorIndex.delete_by_product`) and usually
``shop_id`` (for the optional shop filter) in its payload; both are indexed as keywords.

:class:`IndexTuning` sets the HNSW graph and int8 scalar quantization of both adapters.
Quantized search oversamples and rescores the candidates on the original vectors, so
scores stay exact cosines; the int8 copy makes HNSW builds ~3x faster and searches
cheaper (bench/matcher measures recall and latency on 100k products).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt
import qdrant_edge as edge
from qdrant_client import AsyncQdrantClient
from qdrant_client import models as qm

__all__ = [
    "IndexTuning",
    "QdrantEdgeIndex",
    "QdrantServerIndex",
    "VectorHit",
    "VectorIndex",
    "VectorPoint",
    "open_vector_index",
]

log = logging.getLogger(__name__)

PRODUCT_ID = "product_id"
SHOP_ID = "shop_id"

VectorLike = Sequence[float] | npt.NDArray[np.floating[Any]]
PayloadValue = str | int | float


@dataclass(frozen=True)
class VectorPoint:
    id: str  # UUID string; hits return it in canonical lower-case form
    vector: VectorLike
    payload: dict[str, PayloadValue]


@dataclass(frozen=True)
class VectorHit:
    id: str
    score: float  # cosine similarity in [-1, 1], higher is closer
    payload: dict[str, Any]


@dataclass(frozen=True)
class IndexTuning:
    """How a collection is indexed and searched (applied when it is created or opened)."""

    hnsw_m: int = 16  # graph edges per node
    hnsw_ef_construct: int = 100  # candidates while building: build time vs graph quality
    search_ef: int | None = None  # candidates while searching; None = the engine's default
    quantization: Literal["none", "int8"] = "none"
    oversampling: float = 2.0  # int8 only: candidates rescored = limit x oversampling

    def __post_init__(self) -> None:
        if self.hnsw_m < 2 or self.hnsw_ef_construct < 4:
            raise ValueError("hnsw_m must be >= 2 and hnsw_ef_construct >= 4")
        if self.search_ef is not None and self.search_ef < 1:
            raise ValueError("search_ef must be >= 1")
        if self.oversampling < 1.0:
            raise ValueError("oversampling must be >= 1")


@runtime_checkable
class VectorIndex(Protocol):
    async def ensure_collection(self) -> None:
        """Create the collection / shard and its payload indexes if missing (idempotent)."""
        ...

    async def upsert(self, points: Sequence[VectorPoint]) -> None: ...

    async def delete_by_product(self, product_id: str) -> None:
        """Delete every point whose payload ``product_id`` equals ``product_id``."""
        ...

    async def search(
        self,
        vector: VectorLike,
        limit: int,
        shop_id: str | None = None,
        *,
        score_threshold: float | None = None,
    ) -> list[VectorHit]:
        """Nearest points by cosine similarity, best first, optionally within one shop
        and at least ``score_threshold`` similar."""
        ...

    async def search_batch(
        self, vectors: Sequence[VectorLike], limit: int, *, score_threshold: float | None = None
    ) -> list[list[VectorHit]]:
        """:meth:`search` for several vectors in one call (one list of hits per vector)."""
        ...

    async def vectors(self, ids: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        """Stored vectors by point id (unit length); ids not stored are left out."""
        ...

    async def delete(self, ids: Sequence[str]) -> None:
        """Delete points by id; unknown ids are ignored."""
        ...

    async def count(self) -> int: ...

    async def close(self) -> None: ...


def _as_vector(vector: VectorLike, dimension: int) -> list[float]:
    array = np.asarray(vector, dtype=np.float32).reshape(-1)
    if array.size != dimension:
        raise ValueError(f"vector has {array.size} dimensions, index expects {dimension}")
    # NaN/inf would be stored silently and poison every cosine computed against them.
    if not np.isfinite(array).all():
        raise ValueError("vector contains NaN or infinite values")
    # Plain lists: both clients take them, and qdrant_edge converts them ~3x faster than
    # numpy arrays.
    values: list[float] = array.tolist()
    return values


def _as_point_id(point_id: str) -> str:
    try:
        return str(uuid.UUID(point_id))
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"point id must be a UUID string, got {point_id!r}") from exc


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")


# --------------------------------------------------------------------------- server


class QdrantServerIndex(VectorIndex):
    """Collection on a Qdrant server, via ``AsyncQdrantClient``.

    Also works with ``AsyncQdrantClient(location=":memory:")`` (client-side local mode,
    which ignores payload indexes but otherwise speaks the same API).
    """

    def __init__(
        self,
        client: AsyncQdrantClient,
        collection: str,
        dimension: int,
        tuning: IndexTuning | None = None,
    ) -> None:
        self._client = client
        self._collection = collection
        self._dimension = dimension
        self._tuning = tuning or IndexTuning()
        quantized = self._tuning.quantization == "int8"
        self._search_params = qm.SearchParams(
            hnsw_ef=self._tuning.search_ef,
            quantization=qm.QuantizationSearchParams(
                rescore=True, oversampling=self._tuning.oversampling
            )
            if quantized
            else None,
        )

    async def ensure_collection(self) -> None:
        if await self._client.collection_exists(self._collection):
            await self._check_dimension()
        else:
            try:
                await self._client.create_collection(
                    self._collection,
                    vectors_config=qm.VectorParams(
                        size=self._dimension, distance=qm.Distance.COSINE
                    ),
                    hnsw_config=qm.HnswConfigDiff(
                        m=self._tuning.hnsw_m, ef_construct=self._tuning.hnsw_ef_construct
                    ),
                    quantization_config=_server_quantization(self._tuning),
                )
            except Exception:
                # Another replica may have created it between our check and create.
                if not await self._client.collection_exists(self._collection):
                    raise
        for field in (PRODUCT_ID, SHOP_ID):
            # Idempotent on the server; makes deletes and shop-filtered search use indexes.
            await self._client.create_payload_index(
                self._collection, field, field_schema=qm.PayloadSchemaType.KEYWORD, wait=True
            )

    async def _check_dimension(self) -> None:
        info = await self._client.get_collection(self._collection)
        params = info.config.params.vectors
        if isinstance(params, qm.VectorParams) and params.size != self._dimension:
            raise ValueError(
                f"collection {self._collection!r} holds {params.size}-d vectors, "
                f"expected {self._dimension}"
            )

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        structs = [
            qm.PointStruct(
                id=_as_point_id(point.id),
                vector=_as_vector(point.vector, self._dimension),
                payload=dict(point.payload),
            )
            for point in points
        ]
        # wait=True: callers expect read-your-writes (e.g. search right after indexing).
        await self._client.upsert(self._collection, points=structs, wait=True)

    async def delete_by_product(self, product_id: str) -> None:
        await self._client.delete(
            self._collection,
            points_selector=qm.FilterSelector(filter=_server_match(PRODUCT_ID, product_id)),
            wait=True,
        )

    async def search(
        self,
        vector: VectorLike,
        limit: int,
        shop_id: str | None = None,
        *,
        score_threshold: float | None = None,
    ) -> list[VectorHit]:
        _check_limit(limit)
        response = await self._client.query_points(
            self._collection,
            query=_as_vector(vector, self._dimension),
            limit=limit,
            query_filter=None if shop_id is None else _server_match(SHOP_ID, shop_id),
            score_threshold=score_threshold,
            search_params=self._search_params,
            with_payload=True,
        )
        return [_server_hit(hit) for hit in response.points]

    async def search_batch(
        self, vectors: Sequence[VectorLike], limit: int, *, score_threshold: float | None = None
    ) -> list[list[VectorHit]]:
        _check_limit(limit)
        if not len(vectors):
            return []
        requests = [
            qm.QueryRequest(
                query=_as_vector(vector, self._dimension),
                limit=limit,
                score_threshold=score_threshold,
                params=self._search_params,
                with_payload=True,
            )
            for vector in vectors
        ]
        responses = await self._client.query_batch_points(self._collection, requests)
        return [[_server_hit(hit) for hit in response.points] for response in responses]

    async def vectors(self, ids: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        if not ids:
            return {}
        records = await self._client.retrieve(
            self._collection,
            ids=[_as_point_id(point_id) for point_id in ids],
            with_payload=False,
            with_vectors=True,
        )
        return {
            str(record.id): _unit(record.vector)
            for record in records
            if isinstance(record.vector, list)
        }

    async def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        await self._client.delete(
            self._collection,
            points_selector=qm.PointIdsList(points=[_as_point_id(i) for i in ids]),
            wait=True,
        )

    async def count(self) -> int:
        result = await self._client.count(self._collection, exact=True)
        return result.count

    async def close(self) -> None:
        await self._client.close()


def _server_match(key: str, value: str) -> qm.Filter:
    return qm.Filter(must=[qm.FieldCondition(key=key, match=qm.MatchValue(value=value))])


def _server_hit(hit: qm.ScoredPoint) -> VectorHit:
    return VectorHit(id=str(hit.id), score=float(hit.score), payload=dict(hit.payload or {}))


def _server_quantization(tuning: IndexTuning) -> qm.ScalarQuantization | None:
    if tuning.quantization != "int8":
        return None
    return qm.ScalarQuantization(
        scalar=qm.ScalarQuantizationConfig(type=qm.ScalarType.INT8, quantile=0.99, always_ram=True)
    )


def _unit(values: Any) -> npt.NDArray[np.float32]:
    array = np.asarray(values, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    # Cosine collections store normalised vectors; normalise again for local mode's sake.
    return array / norm if norm > 0 else array


# --------------------------------------------------------------------------- edge

_T = TypeVar("_T")

# Run by a child interpreter, see QdrantEdgeIndex.optimize.
_OPTIMIZE_SCRIPT = (
    "import sys, qdrant_edge\n"
    "shard = qdrant_edge.EdgeShard.load(sys.argv[1])\n"
    "changed = shard.optimize()\n"
    "shard.close()\n"
    "print(changed)\n"
)


class QdrantEdgeIndex(VectorIndex):
    """Embedded Qdrant Edge shard stored in directory ``path`` (one shard per directory).

    Observed behaviour of qdrant-edge-py 0.9 that shapes this class:

    * Calls are synchronous and keep the GIL for their whole duration, so
      ``asyncio.to_thread`` does not let the event loop run meanwhile. Fine for upserts
      and searches (milliseconds); not for ``optimize()``, which takes ~16 s for 10k
      1280-d points on 2 cores. That is why :meth:`optimize` runs in a child process.
    * The shard takes an exclusive lock on its WAL: one open handle per directory, even
      within a process. The child can only optimize while we have the shard closed.
    * New points land in a plain (brute-force) segment; HNSW is only built when
      ``optimize()`` runs. We trigger it after ``optimize_threshold`` points were added
      since the last optimize (default 10_000: a plain segment of that size still
      searches in ~7 ms at 1280-d), so the unindexed tail stays bounded.
    * Errors surface as bare ``Exception`` ("Service runtime error: ...").

    Operations are serialised: an asyncio lock keeps optimize's close/reopen exclusive
    and stops queued calls from tying up the default thread pool; a thread lock guards
    the shard object should a cancelled caller leave its worker thread running.
    """

    def __init__(
        self,
        path: str,
        dimension: int,
        *,
        optimize_threshold: int = 10_000,
        optimize_in_subprocess: bool = True,
        tuning: IndexTuning | None = None,
    ) -> None:
        self._path = Path(path)
        self._dimension = dimension
        self._tuning = tuning or IndexTuning()
        self._search_params = edge.SearchParams(
            hnsw_ef=self._tuning.search_ef,
            quantization=edge.QuantizationSearchParams(
                rescore=True, oversampling=self._tuning.oversampling
            )
            if self._tuning.quantization == "int8"
            else None,
        )
        self._optimize_threshold = optimize_threshold
        self._optimize_in_subprocess = optimize_in_subprocess
        self._shard: edge.EdgeShard | None = None
        self._points_since_optimize = 0
        self._lock = asyncio.Lock()
        self._thread_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------

    def _config(self) -> edge.EdgeConfig:
        # Passed on every open: a changed tuning applies to segments optimized from then on.
        quantization = (
            edge.ScalarQuantizationConfig(edge.ScalarType.Int8, quantile=0.99, always_ram=True)
            if self._tuning.quantization == "int8"
            else None
        )
        return edge.EdgeConfig(
            vectors=edge.EdgeVectorParams(size=self._dimension, distance=edge.Distance.Cosine),
            hnsw_config=edge.HnswIndexConfig(
                m=self._tuning.hnsw_m,
                ef_construct=self._tuning.hnsw_ef_construct,
                full_scan_threshold=10_000,  # the engine's default (KB)
            ),
            quantization_config=quantization,
        )

    def _has_data(self) -> bool:
        segments = self._path / "segments"
        return (self._path / "edge_config.json").exists() or (
            segments.is_dir() and any(segments.iterdir())
        )

    def _open_shard(self) -> edge.EdgeShard:
        with self._thread_lock:
            if self._has_data():
                # Passing the config makes load() reject a shard of another size/distance.
                shard = edge.EdgeShard.load(str(self._path), self._config())
            else:
                shard = edge.EdgeShard.create(str(self._path), self._config())
            for field in (PRODUCT_ID, SHOP_ID):
                shard.update(
                    edge.UpdateOperation.create_field_index(field, edge.PayloadSchemaType.Keyword)
                )
            self._shard = shard
            return shard

    def _close_shard(self) -> None:
        with self._thread_lock:
            if self._shard is not None:
                shard, self._shard = self._shard, None
                try:
                    shard.flush()
                finally:
                    shard.close()  # always release the WAL lock

    async def ensure_collection(self) -> None:
        async with self._lock:
            if self._shard is None:
                shard = await asyncio.to_thread(self._open_shard)
                # Count a backlog left unindexed by a previous run towards the next optimize.
                info = await self._call(lambda _: shard.info())
                self._points_since_optimize = max(0, info.points_count - info.indexed_vectors_count)

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._close_shard)

    async def _call(self, operation: Callable[[edge.EdgeShard], _T]) -> _T:
        def run() -> _T:
            with self._thread_lock:
                if self._shard is None:
                    raise RuntimeError(
                        f"edge shard at {self._path} is not open; call ensure_collection()"
                    )
                return operation(self._shard)

        return await asyncio.to_thread(run)

    # -- VectorIndex -----------------------------------------------------------

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        edge_points = [
            edge.Point(
                _as_point_id(point.id),
                _as_vector(point.vector, self._dimension),
                dict(point.payload),
            )
            for point in points
        ]
        operation = edge.UpdateOperation.upsert_points(edge_points)
        async with self._lock:
            await self._call(lambda shard: shard.update(operation))
            self._points_since_optimize += len(edge_points)
            if self._points_since_optimize >= self._optimize_threshold:
                try:
                    await self._optimize_locked()
                except Exception:
                    # The points are stored and searchable (brute force); don't fail the write.
                    # Retried after another optimize_threshold points.
                    log.exception("edge shard optimize failed", extra={"path": str(self._path)})
                    self._points_since_optimize = 0

    async def delete_by_product(self, product_id: str) -> None:
        operation = edge.UpdateOperation.delete_points_by_filter(
            _edge_match(PRODUCT_ID, product_id)
        )
        async with self._lock:
            await self._call(lambda shard: shard.update(operation))

    def _request(
        self,
        vector: VectorLike,
        limit: int,
        shop_id: str | None = None,
        score_threshold: float | None = None,
    ) -> edge.QueryRequest:
        return edge.QueryRequest(
            limit=limit,
            query=edge.Query.Nearest(_as_vector(vector, self._dimension)),
            filter=None if shop_id is None else _edge_match(SHOP_ID, shop_id),
            score_threshold=score_threshold,
            params=self._search_params,
            with_payload=True,
        )

    async def search(
        self,
        vector: VectorLike,
        limit: int,
        shop_id: str | None = None,
        *,
        score_threshold: float | None = None,
    ) -> list[VectorHit]:
        _check_limit(limit)
        request = self._request(vector, limit, shop_id, score_threshold)
        async with self._lock:
            scored = await self._call(lambda shard: shard.query(request))
        return [_edge_hit(hit) for hit in scored]

    async def search_batch(
        self, vectors: Sequence[VectorLike], limit: int, *, score_threshold: float | None = None
    ) -> list[list[VectorHit]]:
        _check_limit(limit)
        if not len(vectors):
            return []
        batch = edge.QueryBatchRequest(
            [self._request(vector, limit, score_threshold=score_threshold) for vector in vectors]
        )
        async with self._lock:
            results = await self._call(lambda shard: shard.query_batch(batch))
        return [[_edge_hit(hit) for hit in scored] for scored in results]

    async def vectors(self, ids: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        if not ids:
            return {}
        point_ids: list[int | uuid.UUID | str] = [_as_point_id(point_id) for point_id in ids]
        async with self._lock:
            records = await self._call(
                lambda shard: shard.retrieve(point_ids, with_payload=False, with_vector=True)
            )
        return {
            str(record.id): _unit(record.vector)
            for record in records
            if isinstance(record.vector, list)
        }

    async def delete(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        operation = edge.UpdateOperation.delete_points([_as_point_id(i) for i in ids])
        async with self._lock:
            await self._call(lambda shard: shard.update(operation))

    async def count(self) -> int:
        async with self._lock:
            return await self._call(lambda shard: shard.count(edge.CountRequest(exact=True)))

    # -- maintenance -----------------------------------------------------------

    async def optimize(self) -> bool:
        """Build HNSW for unindexed points and vacuum deletions; True if anything changed.

        Called automatically from :meth:`upsert`; call it yourself after bulk imports that
        stay below the threshold. Other operations wait until it finishes.
        """
        async with self._lock:
            return await self._optimize_locked()

    async def _optimize_locked(self) -> bool:
        if self._shard is None:
            raise RuntimeError(f"edge shard at {self._path} is not open; call ensure_collection()")
        if self._optimize_in_subprocess:
            changed = await self._optimize_in_child()
        else:
            # Blocks the event loop for the whole build (the engine holds the GIL).
            changed = await self._call(lambda shard: shard.optimize())
        self._points_since_optimize = 0
        return changed

    async def _optimize_in_child(self) -> bool:
        await asyncio.to_thread(self._close_shard)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _OPTIMIZE_SCRIPT,
                str(self._path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                stdout, stderr = await process.communicate()
            finally:
                if process.returncode is None:
                    # Cancelled: the child holds the WAL lock, let it finish before reopening.
                    await process.wait()
        finally:
            await asyncio.to_thread(self._open_shard)
        if process.returncode != 0:
            detail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(
                f"optimizing edge shard at {self._path} failed "
                f"(exit {process.returncode}): {detail[0]}"
            )
        return stdout.strip() == b"True"


def _edge_match(key: str, value: str) -> edge.Filter:
    return edge.Filter(must=[edge.FieldCondition(key=key, match=edge.MatchValue(value))])


def _edge_hit(hit: edge.ScoredPoint) -> VectorHit:
    # The engine hands back uuid.UUID objects for UUID ids.
    return VectorHit(id=str(hit.id), score=float(hit.score), payload=dict(hit.payload or {}))


# --------------------------------------------------------------------------- factory


def open_vector_index(
    *,
    qdrant_url: str | None,
    qdrant_path: str,
    collection: str,
    dimension: int,
    api_key: str | None = None,
    tuning: IndexTuning | None = None,
) -> VectorIndex:
    """Qdrant server at ``qdrant_url`` if given, else an embedded edge shard.

    The edge shard lives in ``<qdrant_path>/<collection>`` so that, as on a server, each
    collection is separate. Call ``ensure_collection()`` before use.
    """
    if qdrant_url:
        # The version check is a blocking HTTP GET inside the constructor: it stalls the
        # event loop and only warns anyway (spuriously when Qdrant starts after us).
        client = AsyncQdrantClient(url=qdrant_url, api_key=api_key, check_compatibility=False)
        return QdrantServerIndex(client, collection, dimension, tuning)
    return QdrantEdgeIndex(str(Path(qdrant_path) / collection), dimension, tuning=tuning)
