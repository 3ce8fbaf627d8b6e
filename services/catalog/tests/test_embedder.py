"""ImageEmbedder on real photos shipped inside scikit-image (no downloads)."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from vitrine_catalog.adapters.embedder import (
    DEFAULT_HEAD,
    ImageEmbedder,
    InvalidImageError,
    MatcherHead,
    ObjectColour,
    box_studio_shot,
    openvino_precision,
    pad_to_square,
    turned,
)
from vitrine_catalog.settings import CatalogSettings
from vitrine_runtime.testing import run_in_fresh_python

skimage_data = pytest.importorskip("skimage.data")

# Colour photos bundled with the scikit-image wheel (data.cat() is chelsea again).
_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "coffee": skimage_data.coffee,
    "chelsea": skimage_data.chelsea,
    "astronaut": skimage_data.astronaut,
    "rocket": skimage_data.rocket,
    "motorcycle": lambda: skimage_data.stereo_motorcycle()[0],
    "hubble": skimage_data.hubble_deep_field,
    "ihc": skimage_data.immunohistochemistry,
    "camera": skimage_data.camera,  # greyscale: exercises the RGB conversion
}


@pytest.fixture(scope="module")
def embedder() -> ImageEmbedder:
    return ImageEmbedder.load(threads=2)


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    return {name: Image.fromarray(load()) for name, load in _PHOTOS.items()}


def _variant(image: Image.Image) -> Image.Image:
    """What a shopper's re-upload looks like: cropped off-centre, shrunk, brighter."""
    width, height = image.size
    cropped = image.crop((int(width * 0.12), int(height * 0.05), width, int(height * 0.9)))
    shrunk = cropped.resize((cropped.width * 2 // 5, cropped.height * 2 // 5))
    return ImageEnhance.Brightness(shrunk.convert("RGB")).enhance(1.3)


def test_embedding_shape_dtype_and_unit_norm(
    embedder: ImageEmbedder, photos: dict[str, Image.Image]
) -> None:
    vectors = embedder.embed(list(photos.values()))

    assert embedder.dimension == 1280
    expected = {"f32": "", "bf16": "+bf16"}[embedder.precision]
    assert embedder.model_version == f"efficientnet-lite0-imagenet@168{expected}"
    assert vectors.shape == (len(photos), 1280)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 1280)


def test_edited_copy_is_closest_to_its_original(
    embedder: ImageEmbedder, photos: dict[str, Image.Image]
) -> None:
    names = list(photos)
    originals = embedder.embed([photos[name] for name in names])
    variants = embedder.embed([_variant(photos[name]) for name in names])

    similarity = variants @ originals.T  # unit vectors: dot product == cosine
    for row, name in enumerate(names):
        own = similarity[row, row]
        best_other = np.delete(similarity[row], row).max()
        assert own > best_other, f"{name}: own {own:.3f} <= other {best_other:.3f}"
        assert own > 0.7, f"{name}: own {own:.3f}"


def test_embed_bytes_matches_embed(embedder: ImageEmbedder, photos: dict[str, Image.Image]) -> None:
    image = photos["coffee"]
    png = io.BytesIO()
    image.save(png, format="PNG")  # lossless, so decoding must give the same vector
    rgba = io.BytesIO()
    image.convert("RGBA").save(rgba, format="PNG")

    from_bytes = embedder.embed_bytes([png.getvalue(), rgba.getvalue()])
    direct = embedder.embed([image])

    np.testing.assert_allclose(from_bytes, np.vstack([direct, direct]), atol=1e-5)


def test_a_crops_vector_does_not_depend_on_its_batch(photos: dict[str, Image.Image]) -> None:
    """The service's embedder (head, object colour, padded crops) prepares each image on
    its own thread: a batch must give each crop what it gets alone, in the batch's order."""
    service = ImageEmbedder.load(
        threads=2,
        head=MatcherHead.load(DEFAULT_HEAD),
        object_colour=ObjectColour(weight=0.5, centre=0.4),
        crop_framing="pad",
    )
    crops = []
    for image in photos.values():
        jpeg = io.BytesIO()
        _variant(image).save(jpeg, format="JPEG", quality=85)
        crops.append(jpeg.getvalue())

    together = service.embed_bytes(crops)
    alone = np.vstack([service.embed_bytes([crop]) for crop in crops])

    np.testing.assert_allclose(together, alone, atol=1e-5)
    # Different crops, different vectors: the comparison above is not between constants.
    assert float(np.max(together @ together.T - np.eye(len(crops)))) < 0.99
    # Prepared in one step and finished in another (as bench/matcher times them): the same.
    np.testing.assert_array_equal(service.embed_prepared(service.prepare_bytes(crops)), together)
    assert service.embed_prepared(service.prepare_bytes([])).shape == (0, service.dimension)


def test_transparent_pixels_are_flattened_onto_white(
    embedder: ImageEmbedder, photos: dict[str, Image.Image]
) -> None:
    """Whatever colour hides under alpha=0 must not change the vector."""
    rgb = np.asarray(photos["coffee"])
    alpha = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    alpha[:, : rgb.shape[1] // 3] = 0  # left third transparent, as in a cut-out product
    noise = np.random.default_rng(0).integers(0, 256, rgb.shape, dtype=np.uint8)
    hidden_noise = np.where(alpha[..., None] == 0, noise, rgb)
    hidden_white = np.where(alpha[..., None] == 0, 255, rgb).astype(np.uint8)

    blobs = []
    for pixels in (hidden_noise, hidden_white):
        png = io.BytesIO()
        Image.fromarray(np.dstack([pixels, alpha]), mode="RGBA").save(png, format="PNG")
        blobs.append(png.getvalue())
    vectors = embedder.embed_bytes(blobs)
    opaque_white = embedder.embed([Image.fromarray(hidden_white)])

    np.testing.assert_allclose(vectors, np.vstack([opaque_white, opaque_white]), atol=1e-5)


@pytest.mark.parametrize(
    "blob",
    [b"", b"definitely not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64],
    ids=["empty", "text", "broken-png"],
)
def test_garbage_bytes_raise_invalid_image(embedder: ImageEmbedder, blob: bytes) -> None:
    with pytest.raises(InvalidImageError, match="could not be decoded"):
        embedder.embed_bytes([blob])


def test_truncated_jpeg_raises_invalid_image(
    embedder: ImageEmbedder, photos: dict[str, Image.Image]
) -> None:
    jpeg = io.BytesIO()
    photos["chelsea"].save(jpeg, format="JPEG")

    with pytest.raises(InvalidImageError) as excinfo:
        embedder.embed_bytes([jpeg.getvalue(), jpeg.getvalue()[:300]])

    assert "image #1" in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)


def test_backends_compute_the_same_function(
    embedder: ImageEmbedder, photos: dict[str, Image.Image]
) -> None:
    """float32 on OpenVINO is PyTorch's network, so their vectors share a model version;
    bf16 moves vectors a little, so its vectors are a version of their own."""
    images = [_variant(photo) for photo in photos.values()]
    torch_f32 = ImageEmbedder.load(threads=2, backend="torch")
    openvino_f32 = ImageEmbedder.load(threads=2, backend="openvino", precision="f32")

    reference = torch_f32.embed(images)
    np.testing.assert_allclose(openvino_f32.embed(images), reference, atol=1e-4)
    assert torch_f32.model_version == openvino_f32.model_version
    assert torch_f32.model_version == "efficientnet-lite0-imagenet@168"
    if embedder.precision == "bf16":
        assert embedder.model_version != torch_f32.model_version
        agreement = np.sum(embedder.embed(images) * reference, axis=1)
        assert agreement.min() > 0.97, agreement


def test_torch_backend_refuses_bf16() -> None:
    with pytest.raises(ValueError, match="float32"):
        ImageEmbedder.load(backend="torch", precision="bf16")


def test_bf16_only_where_native_and_not_ruled_out_by_an_isa_cap() -> None:
    native = ["BF16", "FP32", "INT8"]
    assert openvino_precision("auto", native, {}) == "bf16"
    assert openvino_precision("auto", ["FP32", "INT8"], {}) == "f32"
    assert openvino_precision("f32", native, {}) == "f32"

    capped = {"DNNL_MAX_CPU_ISA": "avx2"}
    assert openvino_precision("auto", native, capped) == "f32"
    with pytest.raises(ValueError, match="capped at AVX2"):
        openvino_precision("bf16", native, capped)
    assert openvino_precision("bf16", native, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}) == "bf16"


def test_the_embedder_runs_under_an_avx2_cap() -> None:
    """oneDNN reads the cap once per process, so this runs in a process of its own: on a
    CPU with native bf16, OpenVINO's bf16 under ONEDNN_MAX_CPU_ISA=AVX2 crashed it."""
    script = (
        "import numpy as np\n"
        "from PIL import Image\n"
        "from vitrine_catalog.adapters.embedder import ImageEmbedder\n"
        "e = ImageEmbedder.load(threads=1)\n"
        "v = e.embed([Image.new('RGB', (64, 48), (200, 30, 30))])\n"
        "print(e.precision, v.shape, round(float(np.linalg.norm(v)), 3))\n"
    )
    output = run_in_fresh_python(script, ONEDNN_MAX_CPU_ISA="AVX2")
    assert output.split()[-4:] == ["f32", "(1,", "1280)", "1.0"]


def test_object_colour_weighs_in_the_dot_product_as_configured() -> None:
    """Appended colour turns a dot product into (cosine + w * colour agreement) / (1 + w)."""
    appended = ObjectColour(weight=0.5, centre=0.4)
    features = np.array([[1.0, 0.0], [0.6, 0.8]], np.float32)  # cosine 0.6
    colours = np.array([[0.0, 1.0, 0.0], [0.0, 0.8, 0.6]], np.float32)  # agreement 0.8
    vectors = appended.append(features, colours)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert float(vectors[0] @ vectors[1]) == pytest.approx((0.6 + 0.5 * 0.8) / 1.5, abs=1e-6)


@pytest.mark.parametrize(("weight", "centre"), [(0.0, 0.4), (0.5, 0.0), (0.5, 1.5)])
def test_object_colour_refuses_settings_that_mean_nothing(weight: float, centre: float) -> None:
    with pytest.raises(ValueError, match="object colour"):
        ObjectColour(weight=weight, centre=centre)


def test_pad_to_square_keeps_the_whole_image_on_its_border_colour() -> None:
    backdrop = (30, 60, 90)
    tall = np.zeros((120, 40, 3), np.uint8)
    tall[:] = backdrop
    tall[5:15, 10:30] = (255, 0, 0)  # the top of the object...
    tall[105:115, 10:30] = (0, 0, 255)  # ...and its bottom, both outside a centre square

    square = np.asarray(pad_to_square(Image.fromarray(tall)))

    assert square.shape == (120, 120, 3)
    np.testing.assert_array_equal(square[:, 40:80], tall)  # all of it, in the middle
    assert (square[:, :40] == backdrop).all()
    assert (square[:, 80:] == backdrop).all()
    wide = pad_to_square(Image.fromarray(np.ascontiguousarray(tall.transpose(1, 0, 2))))
    assert wide.size == (120, 120)


def test_a_tall_crop_padded_looks_more_like_its_product_than_its_centre_does(
    photos: dict[str, Image.Image],
) -> None:
    """A detector's crop of a tall object: the centre square of it loses the top and
    bottom; padded, the network sees the whole object, as in the studio shot."""
    padded = ImageEmbedder.load(threads=2, crop_framing="pad")
    centred = ImageEmbedder.load(threads=2, crop_framing="centre")
    for name in ("coffee", "chelsea", "astronaut", "rocket"):
        product = photos[name].convert("RGB").resize((100, 300))
        studio = Image.new("RGB", (300, 300), (255, 255, 255))
        studio.paste(product, (100, 0))
        shot = padded.embed([studio], view="studio")[0]
        assert np.allclose(shot, centred.embed([studio], view="studio")[0], atol=1e-6)

        seen_padded = padded.embed([product], view="crop")[0]
        seen_centred = centred.embed([product], view="crop")[0]

        assert seen_padded @ shot > seen_centred @ shot + 0.1, name


def test_crop_framing_is_part_of_the_model_version() -> None:
    centred = ImageEmbedder.load(threads=2)
    padded = ImageEmbedder.load(threads=2, crop_framing="pad")

    assert padded.model_version == f"{centred.model_version}+crop:pad"


def _studio_shot(product: Image.Image, at: tuple[int, int], size: int = 400) -> Image.Image:
    """``product`` on a plain backdrop that darkens from top to bottom, as studios light it."""
    ramp = np.linspace(250, 200, size, dtype=np.float32)[:, None, None]
    backdrop = np.broadcast_to(ramp, (size, size, 3)).astype(np.uint8)
    shot = Image.fromarray(np.ascontiguousarray(backdrop))
    shot.paste(product, at)
    return shot


def test_a_boxed_studio_shot_is_the_product_with_a_crops_margin() -> None:
    product = Image.new("RGB", (80, 160), (20, 120, 120))
    boxed = box_studio_shot(_studio_shot(product, (100, 60)))

    # 8 % of the box on each side; the mask (at 400 / 128 px a pixel, grown by one
    # pixel so the outline stays in) may add up to ~3 px a side.
    assert 80 * 1.16 - 2 <= boxed.width <= 80 * 1.16 + 8 + 6
    assert 160 * 1.16 - 2 <= boxed.height <= 160 * 1.16 + 8 + 6
    teal = np.asarray(boxed)[boxed.height // 2, boxed.width // 2]
    assert tuple(teal) == (20, 120, 120)


def test_a_shot_without_a_plain_backdrop_is_left_whole(photos: dict[str, Image.Image]) -> None:
    photo = photos["astronaut"].convert("RGB")

    assert box_studio_shot(photo).size == photo.size


def test_a_boxed_shot_looks_more_like_a_crop_of_its_product(
    photos: dict[str, Image.Image],
) -> None:
    """The product small on a wide backdrop (a studio shot) against the product edge to
    edge (a detector's crop): boxing the shot puts both at the same scale."""
    whole = ImageEmbedder.load(threads=2, crop_framing="pad")
    boxed = ImageEmbedder.load(threads=2, crop_framing="pad", studio_framing="box")
    for name in ("coffee", "chelsea", "astronaut", "rocket"):
        product = photos[name].convert("RGB").resize((120, 120))
        shot = _studio_shot(product, (140, 140))
        crop = product.resize((200, 200))

        as_whole = whole.embed([crop], view="crop")[0] @ whole.embed([shot], view="studio")[0]
        as_box = boxed.embed([crop], view="crop")[0] @ boxed.embed([shot], view="studio")[0]

        assert as_box > as_whole + 0.1, name


def test_studio_framing_is_part_of_the_model_version() -> None:
    whole = ImageEmbedder.load(threads=2)
    boxed = ImageEmbedder.load(threads=2, studio_framing="box")

    assert boxed.model_version == f"{whole.model_version}+studio:box"


def _encoded(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_studio_views_are_the_shot_then_each_turn(photos: dict[str, Image.Image]) -> None:
    views = ImageEmbedder.load(threads=2, studio_framing="box", studio_rotations=(0, 20, -20))
    shots = [
        _studio_shot(photos[name].convert("RGB").resize((120, 150)), (130, 120))
        for name in ("coffee", "rocket")
    ]
    blobs = [_encoded(shot) for shot in shots]

    embedded = views.embed_studio_views(blobs)

    assert embedded.shape == (2, 3, views.dimension)
    assert np.allclose(np.linalg.norm(embedded, axis=2), 1.0, atol=1e-4)
    upright = views.embed_bytes(blobs, view="studio")
    assert np.allclose(embedded[:, 0], upright, atol=1e-4)
    # A turned view is another picture of the product, not a copy of the upright one.
    assert float(embedded[0, 1] @ embedded[0, 0]) < 0.99
    assert views.embed_studio_views([]).shape == (0, 3, views.dimension)


def test_many_shots_keep_their_own_views_across_forward_passes(
    photos: dict[str, Image.Image],
) -> None:
    """Eleven shots are 33 views, five forward passes of eight or fewer: with the service's
    head and object colour, each shot's views are what it gets embedded alone, and its
    upright view is its plain studio embedding."""
    service = ImageEmbedder.load(
        threads=2,
        head=MatcherHead.load(DEFAULT_HEAD),
        object_colour=ObjectColour(weight=0.5, centre=0.4),
        crop_framing="pad",
        studio_framing="box",
        studio_rotations=(0, 20, -20),
    )
    products = [photo.convert("RGB").resize((110, 140)) for photo in photos.values()]
    blobs = [
        _encoded(_studio_shot(products[i % len(products)], (60 + 9 * i, 50 + 7 * i)))
        for i in range(11)
    ]

    together = service.embed_studio_views(blobs)

    assert together.shape == (11, 3, service.dimension)
    alone = np.stack([service.embed_studio_views([blob])[0] for blob in blobs])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(together[:, 0], service.embed_bytes(blobs, view="studio"), atol=1e-5)


def test_a_tilted_crop_is_nearer_a_turned_view_than_the_upright_shot(
    photos: dict[str, Image.Image],
) -> None:
    """A product held at a slant in a video (its crop: the product turned 20 degrees on
    the scene behind it) is nearer a turned view of its studio shot than the upright shot,
    with the shipped head and object colour."""
    views = ImageEmbedder.load(
        threads=2,
        crop_framing="pad",
        studio_framing="box",
        studio_rotations=(0, 20, -20),
        head=MatcherHead.load(DEFAULT_HEAD),
        object_colour=ObjectColour(0.5, 0.4),
    )
    gains = []
    for name in ("coffee", "chelsea", "astronaut", "rocket"):
        product = photos[name].convert("RGB").resize((120, 150))
        shot = _studio_shot(product, (130, 120))
        tilted = product.convert("RGBA").rotate(20, Image.Resampling.BICUBIC, expand=True)
        crop = Image.new("RGB", (tilted.width + 24, tilted.height + 24), (96, 112, 92))
        crop.paste(tilted, (12, 12), tilted)

        scores = views.embed_studio_views([_encoded(shot)])[0] @ views.embed([crop], view="crop")[0]
        gains.append(float(scores[1:].max() - scores[0]))

    # Measured (bf16): +0.09, +0.01, +0.11, +0.01.
    assert sum(gain > 0 for gain in gains) >= 3, gains
    assert float(np.mean(gains)) > 0.03, gains


def test_studio_rotations_are_part_of_the_model_version_and_start_upright() -> None:
    upright = ImageEmbedder.load(threads=2)
    views = ImageEmbedder.load(threads=2, studio_rotations=(0, 20, -20))

    assert views.model_version == f"{upright.model_version}+turns:0,20,-20"
    assert views.crop_model_version == upright.crop_model_version == upright.model_version
    with pytest.raises(ValueError, match="the first 0"):
        ImageEmbedder.load(threads=2, studio_rotations=(20, 0))


def test_turned_grows_the_canvas_on_the_border_colour() -> None:
    image = Image.new("RGB", (100, 40), (200, 30, 30))
    image.paste((20, 20, 200), (0, 0, 100, 2))  # a blue top edge: the border is mostly red

    quarter = turned(image, 90)

    assert quarter.size == (40, 100)
    assert turned(image, 0) is image
    slanted = np.asarray(turned(image, 30))
    assert slanted.shape[1] > 100
    assert slanted.shape[0] > 40
    assert tuple(slanted[0, 0]) == (200, 30, 30)  # a new corner, filled with the border's red


def test_another_input_size_is_a_version_of_its_own_and_still_finds_the_original(
    embedder: ImageEmbedder, photos: dict[str, Image.Image]
) -> None:
    full = ImageEmbedder.load(threads=2, input_size=224)
    names = list(photos)
    originals = full.embed([photos[name] for name in names])
    variants = full.embed([_variant(photos[name]) for name in names])

    assert full.input_size == 224
    assert embedder.input_size == 168
    assert full.network_version.startswith("efficientnet-lite0-imagenet@224")
    assert full.crop_model_version != embedder.crop_model_version
    np.testing.assert_allclose(np.linalg.norm(originals, axis=1), 1.0, atol=1e-5)
    similarity = variants @ originals.T
    for row, name in enumerate(names):
        assert similarity[row, row] > np.delete(similarity[row], row).max(), name


@pytest.mark.parametrize("side", [0, 200, 500])
def test_an_input_size_the_colour_grid_cannot_divide_is_refused(side: int) -> None:
    with pytest.raises(ValueError, match="multiple of 56"):
        ImageEmbedder.load(threads=2, input_size=side)
    with pytest.raises(ValueError, match="multiple of 56"):
        CatalogSettings(embed_input_size=side)
