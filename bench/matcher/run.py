"""make bench-matcher: how fast the catalog embeds crops and searches a 100k catalog.

Prints, in one run on this machine, against the targets of issue 3:

* crops embedded per second, batched as the service batches them (the crops of one
  track, up to 8) and in bulk (32), with the service's embedder settings, beside the
  PyTorch float32 baseline;
* search latency p50/p99 through the service's index adapter (QdrantEdgeIndex with the
  service's HNSW and quantization settings) on a 100k-product catalog, and recall@10
  against exact (brute-force) search.

The crops are real: detector-like crops (off-centre, rotated, re-lit, blurred, JPEG) of
the photos that ship in scikit-image and ultralytics. The 100k catalog vectors are
synthetic, grown from real embeddings (see :func:`catalog_vectors`); the index is built
once and cached under .vitrine/bench/matcher/ (``--rebuild`` builds it again).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from vitrine_catalog.adapters import colour
from vitrine_catalog.adapters.embedder import ImageEmbedder
from vitrine_catalog.adapters.vector_index import IndexTuning, QdrantEdgeIndex, VectorPoint
from vitrine_catalog.app import load_embedder
from vitrine_catalog.settings import CatalogSettings
from vitrine_stack.machine import cpu_kind
from vitrine_stack.samples import video_crops

TARGET_CROPS_PER_S = 100.0
TARGET_P99_MS = 10.0
TARGET_RECALL = 0.95

Vectors = npt.NDArray[np.float32]


def shipped_photos() -> dict[str, np.ndarray]:
    from skimage import data as sk

    # Colour and greyscale photos that ship inside the scikit-image wheel.
    names = (
        "astronaut coffee chelsea rocket hubble_deep_field immunohistochemistry colorwheel"
        " retina camera moon coins clock cell brick grass gravel text page"
    )
    photos: dict[str, np.ndarray] = {name: getattr(sk, name)() for name in names.split()}
    photos["logo"] = getattr(sk, "logo")()[..., :3]  # noqa: B009 - RGBA; untyped in skimage
    photos["motorcycle"] = getattr(sk, "stereo_motorcycle")()[0]  # noqa: B009 - a stereo pair
    try:
        import ultralytics

        assets = Path(ultralytics.__file__).parent / "assets"
        for name in ("bus", "zidane"):
            photos[name] = np.asarray(Image.open(assets / f"{name}.jpg").convert("RGB"))
    except ImportError:  # the catalog does not need ultralytics; its photos are a bonus
        pass
    return photos


def real_views(photos: dict[str, np.ndarray], per_photo: int, seed: int) -> list[Image.Image]:
    """Different parts of each photo at different scales: distinct real-world "objects"."""
    rng = np.random.default_rng(seed)
    views = []
    for array in photos.values():
        image = Image.fromarray(array).convert("RGB")
        width, height = image.size
        for _ in range(per_photo):
            keep = rng.uniform(0.3, 0.7)
            w, h = int(width * keep), int(height * keep)
            left, top = int(rng.uniform(0, width - w)), int(rng.uniform(0, height - h))
            views.append(image.crop((left, top, left + w, top + h)))
    return views


# ------------------------------------------------------------------------ embedding


def embedding_rate(
    embedder: ImageEmbedder, crops: list[bytes], batch: int, seconds: float
) -> tuple[float, float]:
    """Crops per wall-clock second, and the cores this process got meanwhile (CPU time /
    wall time): on a shared machine the second tells how much the first was held back."""
    embedder.embed_bytes(crops[:batch])  # warm-up
    done, position = 0, 0
    start, cpu_start = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        chunk = [crops[(position + i) % len(crops)] for i in range(batch)]
        embedder.embed_bytes(chunk)
        done += batch
        position += batch
    wall = time.perf_counter() - start
    return done / wall, (time.process_time() - cpu_start) / wall


def stage_times(embedder: ImageEmbedder, crops: list[bytes], batch: int) -> tuple[float, float]:
    """Milliseconds a crop for the preparation (decoding, framing, colours) alone, and for
    the network and head alone on prepared batches: what ``embed_bytes`` costs if the two
    stages do not slow each other down."""
    chunks = [crops[i : i + batch] for i in range(0, len(crops) - batch + 1, batch)]
    embedder.embed_prepared(embedder.prepare_bytes(chunks[0]))  # warm-up
    started = time.perf_counter()
    prepared = [embedder.prepare_bytes(chunk) for chunk in chunks]
    preparing = time.perf_counter() - started
    started = time.perf_counter()
    for ready in prepared:
        embedder.embed_prepared(ready)
    network = time.perf_counter() - started
    count = len(chunks) * batch
    return preparing / count * 1000, network / count * 1000


# -------------------------------------------------------------------------- catalog

# Calibrated against real EfficientNet-Lite0 vectors of the shipped photos (printed by
# the run): a detector crop vs its own studio shot ~0.77, look-alikes ~0.7, unrelated
# photos ~0.18. The jitter is multiplicative so vectors stay non-negative and sparse
# like the real (post-ReLU, pooled) features.
CENTRE_JITTER, PRODUCT_JITTER, VIEW_JITTER = 0.5, 0.6, 0.8
PRODUCTS_PER_CATEGORY = 50


def _unit(x: Vectors) -> Vectors:
    unit: Vectors = x / np.linalg.norm(x, axis=1, keepdims=True)
    return unit


def _jitter(x: Vectors, sigma: float, rng: np.random.Generator) -> Vectors:
    noise = rng.standard_normal(x.shape, dtype=np.float32)
    return _unit(x * np.exp(sigma * noise))


def catalog_vectors(anchors: Vectors, products: int, seed: int) -> Vectors:
    """`products` unit vectors in categories of 50 look-alikes.

    Each category centre blends two real embeddings (a random part of a real photo) and
    jitters the blend; each product jitters its category centre. So neighbours are
    structured as in a real catalog (many near look-alikes, most products unrelated)
    instead of uniformly random, which would be both unrealistic and easy to tell apart.
    """
    rng = np.random.default_rng(seed)
    categories = -(-products // PRODUCTS_PER_CATEGORY)
    first = rng.integers(0, len(anchors), categories)
    second = rng.integers(0, len(anchors), categories)
    weight = rng.uniform(0.5, 1.0, (categories, 1)).astype(np.float32)
    centres = _jitter(weight * anchors[first] + (1 - weight) * anchors[second], CENTRE_JITTER, rng)
    category = np.repeat(np.arange(categories), PRODUCTS_PER_CATEGORY)[:products]
    out = np.empty((products, anchors.shape[1]), dtype=np.float32)
    for start in range(0, products, 10_000):  # bounded memory for the noise
        stop = min(products, start + 10_000)
        out[start:stop] = _jitter(centres[category[start:stop]], PRODUCT_JITTER, rng)
    return out


def query_vectors(
    anchors: Vectors, catalog: Vectors, count: int, seed: int
) -> tuple[Vectors, npt.NDArray[np.int64]]:
    """Crops as the matcher sees them: 80% views of catalog products (own index), 20%
    things no shop sells (new blends of real embeddings, index -1)."""
    rng = np.random.default_rng(seed + 1)
    own = rng.integers(0, len(catalog), count)
    distractor = rng.random(count) < 0.2
    own[distractor] = -1
    base = catalog[np.maximum(own, 0)].copy()
    n = int(distractor.sum())
    first, second = rng.integers(0, len(anchors), n), rng.integers(0, len(anchors), n)
    weight = rng.uniform(0.5, 1.0, (n, 1)).astype(np.float32)
    base[distractor] = _jitter(weight * anchors[first] + (1 - weight) * anchors[second], 0.7, rng)
    return _jitter(base, VIEW_JITTER, rng), own


def _projected(x: Vectors, project: Callable[[Vectors], Vectors] | None) -> Vectors:
    if project is None:
        return x
    return np.concatenate([project(x[i : i + 10_000]) for i in range(0, len(x), 10_000)])


def _with_object_colour(x: Vectors, features: Vectors, embedder: ImageEmbedder) -> Vectors:
    """The service's vectors also carry the object's colour: for synthetic products, the
    colour part of the features they grew from stands in for it (the same histogram)."""
    if embedder.object_colour is None or embedder.head is None:
        return x  # without a head the features are the service's vectors already
    colours = features[:, -colour.DIMENSION :]
    colours = colours / np.maximum(np.linalg.norm(colours, axis=1, keepdims=True), 1e-12)
    return embedder.object_colour.append(x, colours.astype(np.float32))


def exact_top(queries: Vectors, catalog: Vectors, k: int) -> npt.NDArray[np.int64]:
    top = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 100):
        scores = queries[start : start + 100] @ catalog.T
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
        top[start : start + 100] = np.take_along_axis(part, order, axis=1)
    return top


def point_id(n: int) -> str:
    return str(uuid.UUID(int=n + 1))


async def build_index(
    path: Path, catalog: Vectors, tuning: IndexTuning, say: Callable[[str], None]
) -> dict[str, float]:
    # No automatic optimize while importing: one HNSW build over the whole catalog.
    index = QdrantEdgeIndex(str(path), catalog.shape[1], optimize_threshold=10**9, tuning=tuning)
    await index.ensure_collection()
    started = time.perf_counter()
    for start in range(0, len(catalog), 2000):
        await index.upsert(
            [
                VectorPoint(
                    point_id(n),
                    catalog[n],
                    {"product_id": f"prod_{n:07d}", "shop_id": f"shop_{n % 997:04d}"},
                )
                for n in range(start, min(len(catalog), start + 2000))
            ]
        )
    upserted = time.perf_counter()
    say(f"  upserted {len(catalog):,} points in {upserted - started:.1f} s; building HNSW ...")
    await index.optimize()
    optimized = time.perf_counter()
    await index.close()
    return {"upsert_s": upserted - started, "optimize_s": optimized - upserted}


# ----------------------------------------------------------------------------- main


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def verdict(ok: bool) -> str:
    return "MEETS" if ok else "MISSES"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15.0, help="per embedding measurement")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached index")
    parser.add_argument("--skip-embedding", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true", help="no PyTorch baseline")
    parser.add_argument("--cache", default=".vitrine/bench/matcher")
    args = parser.parse_args()
    settings = CatalogSettings()
    run_started = time.perf_counter()

    def say(line: str) -> None:
        print(line, flush=True)

    say("== bench-matcher ==")
    say(
        f"machine: {cpu_kind().describe()};"
        f" load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} (shared machine:"
        " other work skews figures)"
    )
    embedder = load_embedder(settings)  # as the service runs it, matcher head included
    say(
        f"embedder: backend={settings.embed_backend} precision={embedder.precision}"
        f" model_version={embedder.model_version}"
    )

    photos = shipped_photos()
    crops = [
        crop
        for n, array in enumerate(photos.values())
        for crop in video_crops(array, count=8, seed=100 + n)
    ]
    sizes = [Image.open(io.BytesIO(c)).size for c in crops]
    say(
        f"crops: {len(crops)} detector-like JPEG crops of {len(photos)} shipped photos,"
        f" {min(min(s) for s in sizes)}-{max(max(s) for s in sizes)} px"
    )

    # --- 1. embedding speed ---------------------------------------------------------
    rates: dict[str, float] = {}
    if not args.skip_embedding:
        say("\n-- 1. crops embedded per second (decode + resize + network, batched) --")
        for batch in (8, 32):
            rate, cores = embedding_rate(embedder, crops, batch, args.seconds)
            rates[f"service@{batch}"] = rate
            say(
                f"  {settings.embed_backend}-{embedder.precision}, batch {batch:>2}:"
                f" {rate:7.1f} crops/s  (using {cores:.2f} of {os.cpu_count()} cores)"
            )
        preparing, network = stage_times(embedder, crops, 8)
        together = 1000 / rates["service@8"]
        say(
            f"  where a crop's time goes at batch 8: preparation alone {preparing:.2f} ms,"
            f" network and head alone {network:.2f} ms; together {together:.2f} ms ="
            f" {together / (preparing + network):.2f} of their sum"
        )
        if together > 1.2 * (preparing + network):
            say(
                "  ! the stages slow each other down: look for threads spinning between them"
                " (vitrine_runtime.cores)"
            )
        if not args.skip_baseline:
            baseline = ImageEmbedder.load(
                threads=settings.embed_threads,
                backend="torch",
                input_size=embedder.input_size,
                head=embedder.head,
                object_colour=embedder.object_colour,
                # The same function as the service's, framing included: only the runtime
                # differs, so the cosine printed below tells whether both agree.
                crop_framing=embedder.crop_framing,
                studio_framing=embedder.studio_framing,
                studio_rotations=embedder.studio_rotations,
            )
            rate, cores = embedding_rate(baseline, crops, 8, args.seconds)
            rates["torch@8"] = rate
            say(
                f"  baseline torch-f32, batch  8: {rate:7.1f} crops/s"
                f"  (using {cores:.2f} of {os.cpu_count()} cores)"
            )
            reference = baseline.embed_bytes(crops[:64])
            ours = embedder.embed_bytes(crops[:64])
            agreement = np.sum(reference * ours, axis=1)
            say(
                f"  same vectors? cosine(service, torch-f32) over 64 crops: mean"
                f" {agreement.mean():.4f}, min {agreement.min():.4f}"
            )
            baseline.close()

    # --- 2. catalog ------------------------------------------------------------------
    say(f"\n-- 2. search on a {args.products:,}-product catalog (embedded Qdrant edge) --")
    tuning = IndexTuning(
        hnsw_m=settings.qdrant_hnsw_m,
        hnsw_ef_construct=settings.qdrant_hnsw_ef_construct,
        search_ef=settings.qdrant_search_ef,
        quantization=settings.qdrant_quantization,
        oversampling=settings.qdrant_oversampling,
    )
    say(f"  index tuning: {asdict(tuning)}")
    build_key = {
        "products": args.products,
        "seed": args.seed,
        "jitter": [CENTRE_JITTER, PRODUCT_JITTER, VIEW_JITTER, PRODUCTS_PER_CATEGORY],
        "m": tuning.hnsw_m,
        "ef_construct": tuning.hnsw_ef_construct,
        "quantization": tuning.quantization,
        "model": embedder.model_version,
    }
    digest = hashlib.sha256(json.dumps(build_key, sort_keys=True).encode()).hexdigest()[:12]
    cache = Path(args.cache) / digest
    marker = cache / "build.json"
    if args.rebuild or not marker.exists():
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        views = real_views(photos, per_photo=12, seed=args.seed)
        # With a matcher head the synthetic products grow in the space it projects from
        # (pooled features and colour, both non-negative), then go through the head.
        features = embedder.features if embedder.head is not None else embedder.embed
        anchors = np.concatenate([features(views[i : i + 32]) for i in range(0, len(views), 32)])
        np.save(cache / "anchors.npy", anchors)
    anchors = np.load(cache / "anchors.npy")
    project = embedder.head.project if embedder.head is not None else None
    catalog_features = catalog_vectors(anchors, args.products, args.seed)
    query_features, own = query_vectors(anchors, catalog_features, args.queries, args.seed)
    catalog = _with_object_colour(_projected(catalog_features, project), catalog_features, embedder)
    queries = _with_object_colour(_projected(query_features, project), query_features, embedder)
    anchors = _with_object_colour(_projected(anchors, project), anchors, embedder)
    del catalog_features, query_features

    # How the synthetic vectors compare with real ones.
    studio = embedder.embed(
        [Image.fromarray(a).convert("RGB") for a in list(photos.values())[:8]], view="studio"
    )
    real_own = np.sum(embedder.embed_bytes(crops[:64]) * np.repeat(studio, 8, axis=0), axis=1)
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, len(catalog), (2000, 2))
    in_category = np.arange(0, len(catalog) - 1, PRODUCTS_PER_CATEGORY)[:2000]
    anchor_pairs = anchors @ anchors.T
    photo_of = np.repeat(np.arange(len(photos)), 12)
    other_photo = photo_of[:, None] != photo_of[None, :]
    product_views = own >= 0
    say(
        "  vectors: synthetic, grown from "
        f"{len(anchors)} real embeddings (parts of the shipped photos) in categories of"
        f" {PRODUCTS_PER_CATEGORY} look-alikes; queries: {product_views.sum()} views of"
        f" catalog products + {(~product_views).sum()} things no shop sells"
    )

    def mean_cosine(a: Vectors, b: Vectors) -> float:
        return float(np.mean(np.sum(a * b, axis=1)))

    say(
        "  realism, mean cosine  synthetic | real:"
        " query vs its product"
        f" {mean_cosine(queries[product_views], catalog[own[product_views]]):.2f}"
        f" | crop vs its photo {np.mean(real_own):.2f};"
        f" look-alikes {mean_cosine(catalog[in_category], catalog[in_category + 1]):.2f};"
        f" unrelated {mean_cosine(catalog[pairs[:, 0]], catalog[pairs[:, 1]]):.2f}"
        f" | different photos {anchor_pairs[other_photo].mean():.2f}"
    )

    if args.rebuild or not marker.exists():
        say(f"  building the index in {cache} (once; cached for later runs) ...")
        timings = await build_index(cache / "shard", catalog, tuning, say)
        marker.write_text(json.dumps({**build_key, **timings}))
        built_now = True
    else:
        timings = json.loads(marker.read_text())
        built_now = False
    build_s = timings["upsert_s"] + timings["optimize_s"]
    say(
        f"  build: upsert {timings['upsert_s']:.1f} s + HNSW optimize {timings['optimize_s']:.1f} s"
        f" = {build_s:.1f} s {'(this run)' if built_now else '(cached, measured when built)'}"
    )

    index = QdrantEdgeIndex(
        str(cache / "shard"), catalog.shape[1], optimize_threshold=10**9, tuning=tuning
    )
    await index.ensure_collection()
    info = await index._call(lambda shard: shard.info())
    say(
        f"  shard: {info.points_count:,} points, {info.indexed_vectors_count:,} in HNSW,"
        f" {info.segments_count} segments"
    )
    truth = exact_top(queries, catalog, 10)
    for vector in queries[:50]:  # warm-up: page in the shard
        await index.search(vector, 10)
    latencies: list[float] = []
    recalls: list[float] = []
    found_own = 0
    for n, vector in enumerate(queries):
        started = time.perf_counter()
        hits = await index.search(vector, 10)
        latencies.append((time.perf_counter() - started) * 1000)
        got = {int(uuid.UUID(hit.id).int) - 1 for hit in hits}
        recalls.append(len(got & set(truth[n].tolist())) / 10)
        found_own += own[n] >= 0 and own[n] in got
    track_latencies: list[float] = []
    for start in range(0, len(queries) - 7, 8):
        started = time.perf_counter()
        await index.search_batch(list(queries[start : start + 8]), 10)
        track_latencies.append((time.perf_counter() - started) * 1000)
    await index.close()
    p50, p99, recall = percentile(latencies, 50), percentile(latencies, 99), float(np.mean(recalls))
    say(
        f"  search (top 10, one crop): p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        f" over {len(queries)} queries"
    )
    say(
        f"  search (a track's 8 crops in one batch): p50 {percentile(track_latencies, 50):.2f} ms,"
        f" p99 {percentile(track_latencies, 99):.2f} ms"
    )
    say(
        f"  recall@10 vs exact search: {recall:.4f}; own product in the top 10 for"
        f" {found_own}/{product_views.sum()} product views"
    )

    # --- summary ------------------------------------------------------------------------
    say("\n-- summary (figure / target = ratio) --")
    if rates:
        rate = rates["service@8"]
        say(
            f"  crops embedded/s (batch 8) {rate:8.1f} / >= {TARGET_CROPS_PER_S:.0f}"
            f"   = {rate / TARGET_CROPS_PER_S:.2f}x  {verdict(rate >= TARGET_CROPS_PER_S)}"
        )
        say(
            f"  crops embedded/s (batch 32){rates['service@32']:8.1f} / >= {TARGET_CROPS_PER_S:.0f}"
            f"   = {rates['service@32'] / TARGET_CROPS_PER_S:.2f}x"
            f"  {verdict(rates['service@32'] >= TARGET_CROPS_PER_S)}"
        )
        if "torch@8" in rates:
            say(f"  speed-up over the PyTorch baseline: {rate / rates['torch@8']:.1f}x")
    say(
        f"  search p99 (ms)            {p99:8.2f} / <= {TARGET_P99_MS:.0f}"
        f"    = {p99 / TARGET_P99_MS:.2f} of budget  {verdict(p99 <= TARGET_P99_MS)}"
    )
    say(
        f"  recall@10                  {recall:8.4f} / >= {TARGET_RECALL}"
        f" = {recall / TARGET_RECALL:.2f}x  {verdict(recall >= TARGET_RECALL)}"
    )
    say(f"  index build (100k)         {build_s:8.1f} s")
    say(f"total bench time {time.perf_counter() - run_started:.0f} s")
    embedder.close()


if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=UserWarning)
    sys.exit(asyncio.run(main()))
