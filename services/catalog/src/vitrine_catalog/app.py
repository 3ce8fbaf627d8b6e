"""Composition root of the catalog service."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from vitrine_catalog import handlers
from vitrine_catalog.adapters.embedder import ImageEmbedder, MatcherHead, ObjectColour
from vitrine_catalog.adapters.vector_index import IndexTuning, open_vector_index
from vitrine_catalog.adapters.verifier import load_verifier
from vitrine_catalog.api.routes import router
from vitrine_catalog.application import Catalog
from vitrine_catalog.settings import CatalogSettings
from vitrine_runtime.cores import cpu_budget, limit_blas_threads
from vitrine_runtime.logging import get_logger
from vitrine_runtime.media import open_media_store
from vitrine_runtime.service import ServiceRuntime
from vitrine_schemas.events import ProductMatched, ProductUpserted

log = get_logger(__name__)


def load_embedder(settings: CatalogSettings) -> ImageEmbedder:
    """The embedder the settings describe, matcher head included (blocking: the first
    start on a machine converts the network to OpenVINO)."""
    # The network owns the cores; numpy's small products around it must not spin on them.
    limit_blas_threads()
    # Under a container's CPU quota the engine would count the node's cores, not the pod's.
    budget = cpu_budget()
    threads = budget.inference_threads(settings.embed_threads)
    log.info("embedder_cores", budget=budget.describe(), threads=threads or "engine's choice")
    head = None if settings.embed_head == "none" else MatcherHead.load(settings.embed_head)
    object_colour = (
        ObjectColour(settings.match_colour_weight, settings.match_colour_centre)
        if settings.match_colour_weight > 0
        else None
    )
    return ImageEmbedder.load(
        threads=threads,
        backend=settings.embed_backend,
        precision=settings.embed_precision,
        cache_dir=settings.embed_cache_dir,
        input_size=settings.embed_input_size,
        head=head,
        object_colour=object_colour,
        crop_framing=settings.match_crop_framing,
        studio_framing=settings.match_studio_framing,
        studio_rotations=settings.match_studio_rotations,
    )


def build_runtime(settings: CatalogSettings) -> ServiceRuntime:
    return ServiceRuntime(
        settings,
        migrations="vitrine_catalog.migrations",
        produces=[ProductUpserted, ProductMatched],
        description="Shops, products and product image vectors; matches objects seen in"
        " videos to products.",
    )


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings()
    runtime = build_runtime(settings)
    app = runtime.create_app([router])

    def started_catalog() -> Catalog:
        return app.state.catalog  # type: ignore[no-any-return]

    handlers.register(runtime.consumer, started_catalog)

    @runtime.on_start
    async def open_catalog(rt: ServiceRuntime) -> None:
        # A missing or broken verifier file stops the start here, not the first match.
        verifier = (
            load_verifier(settings.match_verifier) if settings.match_rule == "verifier" else None
        )
        log.info("matcher_rule", rule=settings.match_rule, cut=verifier.cut if verifier else None)
        # The first start on a machine converts the network to OpenVINO (10-30 s): off the
        # event loop, so /healthz keeps answering meanwhile.
        embedder = await asyncio.to_thread(load_embedder, settings)
        log.info("embedder_loaded", model=embedder.model_version, dimension=embedder.dimension)
        tuning = IndexTuning(
            hnsw_m=settings.qdrant_hnsw_m,
            hnsw_ef_construct=settings.qdrant_hnsw_ef_construct,
            search_ef=settings.qdrant_search_ef,
            quantization=settings.qdrant_quantization,
            oversampling=settings.qdrant_oversampling,
        )
        index, track_crops = (
            open_vector_index(
                qdrant_url=settings.qdrant_url,
                qdrant_path=settings.qdrant_path,
                collection=f"{collection}_{embedder.dimension}",
                dimension=embedder.dimension,
                api_key=settings.qdrant_api_key,
                tuning=tuning,
            )
            for collection in (settings.qdrant_collection, settings.track_crops_collection)
        )
        await index.ensure_collection()
        await track_crops.ensure_collection()
        catalog = Catalog(
            db=rt.db,
            media=open_media_store(settings),
            embedder=embedder,
            index=index,
            track_crops=track_crops,
            settings=settings,
            envelope=rt.envelope,
            verifier=verifier,
        )
        app.state.catalog = catalog
        app.state.reembedding = asyncio.create_task(reembed(catalog))

    async def reembed(catalog: Catalog) -> None:
        try:
            images, tracks = await catalog.reembed_stale()
            if images or tracks:
                log.info("reembedded_for_model", images=images, tracks=tracks)
        except Exception:  # retried at the next start; matching goes on meanwhile
            log.exception("reembed_failed")

    @runtime.on_stop
    async def close_index(_: ServiceRuntime) -> None:
        task: asyncio.Task[None] | None = getattr(app.state, "reembedding", None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        catalog: Catalog | None = getattr(app.state, "catalog", None)
        if catalog is not None:
            await catalog.index.close()
            await catalog.track_crops.close()
            catalog.embedder.close()

    return app


def main() -> None:
    settings = CatalogSettings()
    app = create_app(settings)
    app.state.runtime.serve(app)
