"""Composition root of the catalog service."""

from __future__ import annotations

from fastapi import FastAPI

from vitrine_catalog import handlers
from vitrine_catalog.adapters.embedder import ImageEmbedder
from vitrine_catalog.adapters.vector_index import open_vector_index
from vitrine_catalog.api.routes import router
from vitrine_catalog.application import Catalog
from vitrine_catalog.settings import CatalogSettings
from vitrine_runtime.media import open_media_store
from vitrine_runtime.service import ServiceRuntime
from vitrine_schemas.events import ProductMatched, ProductUpserted


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
        embedder = ImageEmbedder.load(threads=settings.embed_threads)
        index = open_vector_index(
            qdrant_url=settings.qdrant_url,
            qdrant_path=settings.qdrant_path,
            collection=settings.qdrant_collection,
            dimension=embedder.dimension,
            api_key=settings.qdrant_api_key,
        )
        await index.ensure_collection()
        app.state.catalog = Catalog(
            db=rt.db,
            media=open_media_store(settings),
            embedder=embedder,
            index=index,
            settings=settings,
            envelope=rt.envelope,
        )

    @runtime.on_stop
    async def close_index(_: ServiceRuntime) -> None:
        catalog: Catalog | None = getattr(app.state, "catalog", None)
        if catalog is not None:
            await catalog.index.close()

    return app


def main() -> None:
    settings = CatalogSettings()
    app = create_app(settings)
    app.state.runtime.serve(app)
