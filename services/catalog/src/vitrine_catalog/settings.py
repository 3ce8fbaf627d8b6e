from pydantic import Field

from vitrine_runtime.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: str = "catalog"

    qdrant_url: str | None = Field(None, description="Qdrant server; unset = embedded engine")
    qdrant_api_key: str | None = None
    qdrant_path: str = Field("./.vitrine/qdrant", description="embedded engine's directory")
    qdrant_collection: str = "product_images"

    # Measured on the demo's crops (cut, scaled, rotated, re-lit): the right product scored
    # 0.66-0.85, the best wrong one 0.32 at most, things no shop sells 0.16 at most.
    match_score_threshold: float = Field(
        0.55, ge=-1, le=1, description="cosine below which a detected object is not tagged"
    )
    match_margin: float = Field(
        0.05,
        ge=0,
        le=1,
        description="best product must beat the runner-up product by this much",
    )
    match_candidates: int = Field(10, ge=1, le=100, description="image hits fetched per crop")
    max_crops_per_track: int = Field(8, ge=1)
    max_image_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    embed_threads: int | None = Field(None, ge=1, description="torch threads; unset = torch's")
