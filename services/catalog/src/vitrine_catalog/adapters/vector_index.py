"""Vector index port for product image embeddings, with two Qdrant adapters.

* :class:`QdrantServerIndex` talks to a Qdrant server (production, shared by replicas).
* :class:`QdrantEdgeIndex` runs the embedded Qdrant Edge engine in-process on one shard
  directory (single-node deployments, development, tests).

Both use cosine similarity (higher score = more similar) and UUID point ids. Every point
should carry ``product_id`` (for :meth:`VectorIndex.delete_by_product`) and usually
``shop_id`` (for the optional shop filter) in its payload; both are indexed as keywords.
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
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt
import qdrant_edge as edge
from qdrant_client import AsyncQdrantClient
from qdrant_client import models as qm

__all__ = [
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
        self, vector: VectorLike, limit: int, shop_id: str | None = None
    ) -> list[VectorHit]:
        """Nearest points by cosine similarity, best first, optionally within one shop."""
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

    def __init__(self, client: AsyncQdrantClient, collection: str, dimension: int) -> None:
        self._client = client
        self._collection = collection
        self._dimension = dimension

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
        self, vector: VectorLike, limit: int, shop_id: str | None = None
    ) -> list[VectorHit]:
        _check_limit(limit)
        response = await self._client.query_points(
            self._collection,
            query=_as_vector(vector, self._dimension),
            limit=limit,
            query_filter=None if shop_id is None else _server_match(SHOP_ID, shop_id),
            with_payload=True,
        )
        return [
            VectorHit(id=str(hit.id), score=float(hit.score), payload=dict(hit.payload or {}))
            for hit in response.points
        ]

    async def count(self) -> int:
        result = await self._client.count(self._collection, exact=True)
        return result.count

    async def close(self) -> None:
        await self._client.close()


def _server_match(key: str, value: str) -> qm.Filter:
    return qm.Filter(must=[qm.FieldCondition(key=key, match=qm.MatchValue(value=value))])


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
    ) -> None:
        self._path = Path(path)
        self._dimension = dimension
        self._optimize_threshold = optimize_threshold
        self._optimize_in_subprocess = optimize_in_subprocess
        self._shard: edge.EdgeShard | None = None
        self._points_since_optimize = 0
        self._lock = asyncio.Lock()
        self._thread_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------

    def _config(self) -> edge.EdgeConfig:
        return edge.EdgeConfig(
            vectors=edge.EdgeVectorParams(size=self._dimension, distance=edge.Distance.Cosine)
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

    async def search(
        self, vector: VectorLike, limit: int, shop_id: str | None = None
    ) -> list[VectorHit]:
        _check_limit(limit)
        request = edge.QueryRequest(
            limit=limit,
            query=edge.Query.Nearest(_as_vector(vector, self._dimension)),
            filter=None if shop_id is None else _edge_match(SHOP_ID, shop_id),
            with_payload=True,
        )
        async with self._lock:
            scored = await self._call(lambda shard: shard.query(request))
        # The engine hands back uuid.UUID objects for UUID ids.
        return [
            VectorHit(id=str(hit.id), score=float(hit.score), payload=dict(hit.payload or {}))
            for hit in scored
        ]

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


# --------------------------------------------------------------------------- factory


def open_vector_index(
    *,
    qdrant_url: str | None,
    qdrant_path: str,
    collection: str,
    dimension: int,
    api_key: str | None = None,
) -> VectorIndex:
    """Qdrant server at ``qdrant_url`` if given, else an embedded edge shard.

    The edge shard lives in ``<qdrant_path>/<collection>`` so that, as on a server, each
    collection is separate. Call ``ensure_collection()`` before use.
    """
    if qdrant_url:
        # The version check is a blocking HTTP GET inside the constructor: it stalls the
        # event loop and only warns anyway (spuriously when Qdrant starts after us).
        client = AsyncQdrantClient(url=qdrant_url, api_key=api_key, check_compatibility=False)
        return QdrantServerIndex(client, collection, dimension)
    return QdrantEdgeIndex(str(Path(qdrant_path) / collection), dimension)
