from typing import Literal

from pydantic import Field

from vitrine_catalog.adapters.embedder import DEFAULT_HEAD, CropFraming, StudioFraming
from vitrine_runtime.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: str = "catalog"

    qdrant_url: str | None = Field(None, description="Qdrant server; unset = embedded engine")
    qdrant_api_key: str | None = None
    qdrant_path: str = Field("./.vitrine/qdrant", description="embedded engine's directory")
    qdrant_collection: str = Field(
        "product_images",
        description="prefix of the collection's name, which ends with the vector size"
        " (product_images_256): a model of another size starts a collection of its own",
    )

    # Calibrated through the real services on eight ShopBench validation splits pooled
    # (seeds 7, 9, 10, 11, 12, 13, 14, 15: eight catalogs, 172 (video, product) pairs;
    # never a test split), with everything below at its default:
    #   python -m vitrine_stack eval --split val --seed 9 --calibrate   (and the others)
    #   python -m vitrine_stack eval --split val --calibrate --pool-with \
    #       .vitrine/calibration-seed-{9,10,11,12,13,14,15}-val.json
    # chose 0.50 and 0.08 (2026-12-06): the best recall (0.69, 119 of 172) at the target
    # precision 0.95 (it gave 0.952) whose next looser threshold holds it too; the same
    # when each split is judged at the values the other seven chose. Chosen again after
    # the detector's TRACK_HIGH_CONFIDENCE went from 0.4 to 0.3: the same values, 122 of
    # 128 right (recall 0.71), out of sample 120 of 126. Four splits alone
    # chose 0.44 / 0.10, which tagged 8 of 131 wrong over the eight. Right products lead
    # their runner-up by 0.1-0.5, distractors and wrong products that score as high mostly
    # by under 0.1. Scores are (head cosine + 0.5 x colour agreement) / 1.5, the head
    # cosine being the mean of its members'; tracks of fewer than 8 crops need more
    # (MATCH_SHORT_TRACK_PENALTY). Other heads, weights, EMBED_HEAD=none,
    # MATCH_COLOUR_WEIGHT=0, another framing or penalty need their own values.
    match_score_threshold: float = Field(
        0.50, ge=-1, le=1, description="cosine below which a detected object is not tagged"
    )
    match_margin: float = Field(
        0.08,
        ge=0,
        le=1,
        description="best product must beat the runner-up product by this much",
    )
    # The object's colour as a second opinion beside the head (see the embedder). On the
    # validation split right products and near-miss distractors overlapped in head cosine
    # (0.31-0.80 against up to 0.49); with the colours of the object alone added, best
    # recall at precision 0.95 rose from 0.76 to 0.90 there. Weight and centre were chosen
    # on that split (centres 0.3, 0.4 and 0.5 each reached 0.90, at weights 0.5, 0.5 and
    # 1). A change of either is a new model version: the vectors are embedded again.
    match_colour_weight: float = Field(
        0.5, ge=0, le=4, description="weight of the object's colour in a vector; 0 = off"
    )
    match_colour_centre: float = Field(
        0.4, gt=0, le=1, description="side of a crop's central box taken as the object"
    )
    # A detector's crop frames one object, often far from square (a bottle, a sneaker);
    # centring cut half of it away before the network saw it. Padded to a square with its
    # border's colour (training/rescore.py on the detector's kept tracks of four ShopBench
    # validation splits pooled, seeds 7, 9, 10, 11): with the float detector at 320 px the
    # best recall at precision 0.95 is the same (0.68 either way); at 416 px, which tracks
    # 85 of the 87 products instead of 76 (small, far ones), it rose from 0.67 to 0.75:
    # the products a larger input finds are the ones a centre crop lost.
    # Studio shots are centred either way. A change is a new model version: the vectors
    # are embedded again.
    match_crop_framing: CropFraming = Field(
        "pad", description="how a crop is made square for the network: pad or centre"
    )
    # Studio shots show the product small on a wide plain backdrop, a crop shows it edge to
    # edge: "box" cuts the shot to the product's box first, as the detector cuts a crop.
    match_studio_framing: StudioFraming = Field(
        "box", description="how a studio shot is framed for the network: whole or box"
    )
    # The fewer crops a track is judged on, the higher it must score (see
    # `domain.matching.short_track_handicap`): a short track's mean is noisier, and brief glimpses
    # are more often blur, fragments or background. Chosen on the detector's tracks of
    # four validation splits and held on eight (training/rescore.py, the matcher's model
    # card); 0 = the same threshold for every track.
    match_short_track_penalty: float = Field(
        0.5, ge=0, le=2, description="extra score a short track needs, scaled by 1/sqrt(crops)"
    )
    match_candidates: int = Field(10, ge=1, le=100, description="image hits fetched per crop")
    max_crops_per_track: int = Field(8, ge=1)
    max_image_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    embed_threads: int | None = Field(
        None, ge=1, description="inference threads; unset = the backend's choice"
    )
    # Measured by bench/matcher on 2 cores: OpenVINO embeds 4-8x more crops per second
    # than PyTorch; bf16 (where the CPU has it natively) another ~1.5x at equal quality.
    embed_backend: Literal["openvino", "torch"] = Field(
        "openvino", description="runs the embedding network"
    )
    embed_precision: Literal["auto", "f32", "bf16"] = Field(
        "auto",
        description="openvino arithmetic; auto = bf16 where the CPU has it natively. Vectors"
        " of another precision are re-embedded: pin it on a fleet of mixed CPUs",
    )
    embed_cache_dir: str = Field(
        "./.vitrine/models", description="where the converted OpenVINO model is cached"
    )
    embed_head: str = Field(
        str(DEFAULT_HEAD),
        description="matcher head (.npz) projecting network features and colour into the"
        " vectors compared; 'none' = the pooled ImageNet features (1280-d)",
    )

    # Index tuning, chosen with bench/matcher (100k products, 1280-d, 2 busy cores): int8
    # quantization with rescoring builds HNSW ~3x faster than float32; m=32/ef_construct=
    # 128 built 100k in ~45 s with recall@10 0.975-0.98 at search ef 128 (m=16/64: 0.93,
    # never above 0.945 even at ef 256); p50 ~0.5 ms.
    qdrant_hnsw_m: int = Field(32, ge=2, le=128)
    qdrant_hnsw_ef_construct: int = Field(128, ge=4, le=1000)
    qdrant_search_ef: int = Field(128, ge=1, le=4096)
    qdrant_quantization: Literal["none", "int8"] = "int8"
    qdrant_oversampling: float = Field(3.0, ge=1.0, le=16.0)

    # Back-catalog re-match: crops of tracks that matched nothing are kept in this
    # collection so a product added later can be searched against them.
    track_crops_collection: str = "track_crops"
    rematch_candidates: int = Field(
        256, ge=1, le=10_000, description="crops fetched per new product image"
    )
