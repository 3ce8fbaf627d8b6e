from typing import Literal

from pydantic import Field, field_validator

from vitrine_catalog.adapters.embedder import (
    DEFAULT_HEAD,
    DEFAULT_INPUT_SIZE,
    CropFraming,
    StudioFraming,
    StudioRotations,
    checked_input_size,
    checked_rotations,
)
from vitrine_catalog.adapters.verifier import DEFAULT_VERIFIER
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

    # What decides that a track is tagged. "verifier" (the default since 2026-12-07): a
    # logistic model over the track's evidence (its best product's mean score, its lead over
    # the runner-up and over the next five, how many crops, how they agree and spread),
    # fitted and its cut calibrated on the detector's real tracks of ShopBench validation
    # splits by training/fit_verifier.py (the matcher's model card). "threshold": the score
    # threshold, margin and short-track penalty below alone. The verifier belongs to the
    # head, network size and colour weight it was fitted with: another needs fitting again.
    match_rule: Literal["verifier", "threshold"] = Field(
        "verifier", description="verifier (learned, default) or threshold (threshold + margin)"
    )
    match_verifier: str = Field(
        str(DEFAULT_VERIFIER), description="the verifier's JSON (training/fit_verifier.py)"
    )

    # For MATCH_RULE=threshold, and as the least cosine of a kept crop that a new product
    # re-matches (rematch). Calibrated on ShopBench validation splits pooled (never a test
    # split) on the detector's real tracks, scored as the catalog scores them, with
    # everything below at its default:
    #   python -m vitrine_stack eval --split val --seed 9     (and the others: keeps tracks)
    #   python services/catalog/training/rescore.py .vitrine/tracks-seed-{7,9,...,30}-val
    # The rule: the best recall at the target precision 0.95 whose next looser threshold
    # holds it too. With the network at 168 px and the head trained at 168 (2026-12-07;
    # sixteen splits, seeds 7, 9-15 and 23-30, 340 (video, product) pairs, f32) it chose
    # 0.50 and 0.08: 249 of 259 tagged right (recall 0.732, precision 0.961); out of sample
    # (each split judged at the values the other fifteen chose) 249 of 260. The head
    # trained at 224 gave 245 of 253 at its 0.50 / 0.10 there, out of sample 243 of 254.
    # Scores run ~0.04 higher at 168 px than at 224. One split's own
    # eval re-checks it through the services: `eval --split val --calibrate`. Right
    # products lead their runner-up by 0.1-0.5, distractors and wrong products that score
    # as high mostly by under 0.1. Scores are (head cosine + 0.5 x colour agreement) / 1.5,
    # the head cosine being the mean of its members'; tracks of fewer than 8 crops need
    # more (MATCH_SHORT_TRACK_PENALTY). Other heads, weights, input sizes, EMBED_HEAD=none,
    # MATCH_COLOUR_WEIGHT=0, another framing, turns or penalty need their own values.
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
    # A product in a video is often tilted; its studio shots are upright, and the network
    # is not rotation invariant. Each shot is also indexed turned by these angles (degrees,
    # 0 = as shot, first), and a crop scores a product's best view. On the detector's
    # tracks of sixteen ShopBench validation splits (training/rescore.py, 340 pairs) turns
    # of +-20 raised the pairs tagged right out of sample from 244 of 256 to 249 of 257
    # (the matcher's model card). Each angle is one more point per
    # image in the index. A change is a new model version: the images are embedded again.
    match_studio_rotations: StudioRotations = Field(
        (0, 20, -20), description="in-plane turns each studio shot is indexed at, 0 first"
    )
    # The fewer crops a track is judged on, the higher it must score (see
    # `domain.matching.short_track_handicap`): a short track's mean is noisier, and brief glimpses
    # are more often blur, fragments or background. Chosen on the detector's tracks of
    # four validation splits and held on eight (training/rescore.py, the matcher's model
    # card); 0 = the same threshold for every track.
    match_short_track_penalty: float = Field(
        0.5, ge=0, le=2, description="extra score a short track needs, scaled by 1/sqrt(crops)"
    )
    # Views of one image sit close together, so a crop's hits are views, not products: on
    # six validation splits' crops (exact search) 10 hits named 4.1 products with one point
    # per image, 2.0 with three views; 30 hits with three views name 5.1.
    match_candidates: int = Field(30, ge=1, le=100, description="image hits fetched per crop")
    max_crops_per_track: int = Field(8, ge=1)
    max_image_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    embed_threads: int | None = Field(
        None,
        ge=1,
        description="inference threads; unset = the container's CPU quota where it allows"
        " fewer than the cores in sight (rounded down), else the backend's choice",
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
    embed_input_size: int = Field(
        DEFAULT_INPUT_SIZE,
        description="side of the square the network sees, px: a multiple of 56 (the colour"
        " descriptor's grid); another size is another version, re-embedded at start",
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

    @field_validator("match_studio_rotations")
    @classmethod
    def _shot_itself_first(cls, turns: StudioRotations) -> StudioRotations:
        return checked_rotations(turns)

    @field_validator("embed_input_size")
    @classmethod
    def _whole_colour_blocks(cls, side: int) -> int:
        return checked_input_size(side)
