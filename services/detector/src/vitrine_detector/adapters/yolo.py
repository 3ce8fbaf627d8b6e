"""The object detector: any ultralytics YOLO detection model, several frames per call.

The weights are a setting: the ShopBench-trained, class-agnostic model ships with the
service, and an operator may drop in their own YOLO weights (.pt, or an ONNX/OpenVINO
export ultralytics can load). Every class the model knows becomes the track's label;
overlapping boxes of different classes are suppressed together (agnostic NMS), since to
the matcher an object is an object whatever the detector calls it.

Runtime: a .pt runs as exported OpenVINO IR by default, made once per weights file and
ultralytics version and cached (a 3 s export at first start): on these 2-core CPUs it
infers a batch of 4 frames at 320 px in 9.7 ms a frame against PyTorch's 17.5 (measured
by training/compare_formats.py, which also checks both give the same boxes).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vitrine_detector.domain.boxes import Box
from vitrine_detector.domain.crops import Image
from vitrine_detector.domain.tracking import Detection
from vitrine_runtime.isa import bf16_allowed

log = logging.getLogger(__name__)

Runtime = Literal["openvino", "torch"]

# Before ultralytics is first imported (it is imported lazily, with the first model): no
# connectivity probes or analytics, never a pip install at run time, no progress chatter.
for _name, _value in (
    ("YOLO_OFFLINE", "1"),
    ("YOLO_AUTOINSTALL", "false"),
    ("YOLO_VERBOSE", "false"),
):
    os.environ.setdefault(_name, _value)


@dataclass(frozen=True, slots=True)
class YoloOptions:
    imgsz: int | None = None  # None: the size the weights were trained at
    confidence: float = 0.25  # weakest detection kept (the tracker decides what starts a track)
    iou: float = 0.5  # NMS overlap
    max_detections: int = 50  # per frame
    batch_size: int = 4  # frames per call
    device: str = "cpu"
    runtime: Runtime = "openvino"  # for .pt weights; exports are run by their own runtime
    cache_dir: Path = Path("./.vitrine/models")  # where the OpenVINO export is kept
    openvino_threads: int | None = None  # None: OpenVINO's choice (one per core in sight)


# The hook below swaps a class attribute: one swap at a time in the process.
_compile_hook = threading.Lock()


def openvino_cpu_config(
    threads: int | None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The CPU plugin properties the detector's OpenVINO compile needs: ``threads``
    inference threads (None: OpenVINO's own count), and float32 where an ISA cap on oneDNN
    in ``environ`` (the process's, by default) rules bf16 out."""
    config: dict[str, Any] = {}
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = threads
    if not bf16_allowed(environ):
        config["INFERENCE_PRECISION_HINT"] = "f32"
    return config


@contextmanager
def _compiling_with(config: dict[str, Any]) -> Iterator[None]:
    """While open, every OpenVINO compile sets ``config`` on its Core's CPU plugin first.

    ultralytics compiles its OpenVINO models itself, with no say in threads or precision.
    OpenVINO counts the cores in sight, not a container's CPU quota (a pod limited to 2
    CPUs on a 64-core node would run 32-64 lockstep threads, throttled), and it picks
    bf16 from CPUID, blind to ``ONEDNN_MAX_CPU_ISA`` (the compile then fails: no kernel for
    the head's softmax; :mod:`vitrine_runtime.isa`). Set on the plugin, the properties
    hold on "AUTO" too (ultralytics' choice where a GPU or NPU is present) and under its
    LATENCY hint; ultralytics binds ``core.compile_model`` once per model, so its
    recompiles later keep them.
    """
    if not config:
        yield
        return
    import openvino as ov

    with _compile_hook:
        original = ov.Core.compile_model

        def compile_model(core: Any, *args: Any, **kwargs: Any) -> Any:
            core.set_property("CPU", config)
            return original(core, *args, **kwargs)

        ov.Core.compile_model = compile_model  # type: ignore[method-assign]
        try:
            yield
        finally:
            ov.Core.compile_model = original  # type: ignore[method-assign]


# Every YOLO ultralytics builds downsamples by 32 at most: inputs are multiples of it.
_STRIDE = 32


def letterbox_shape(frame: tuple[int, ...], size: int) -> tuple[int, int]:
    """The network input (height, width) for frames of ``frame`` (height, width): the long
    side ``size``, the short one scaled alike and rounded up to the stride, as ultralytics'
    letterbox makes it for a model with dynamic shapes."""
    height, width = frame[0], frame[1]
    scale = size / max(height, width)

    def side(length: int) -> int:
        return max(_STRIDE, math.ceil(round(length * scale) / _STRIDE) * _STRIDE)

    return side(height), side(width)


def fixed_batches(images: Sequence[Image], size: int) -> list[tuple[list[Image], int]]:
    """``images`` in batches of exactly ``size``, the last filled up with blank frames, each
    with how many of its frames are real.

    For a model compiled at a static shape: on AMX CPUs ultralytics runs an INT8 OpenVINO
    model so (dynamic shapes crash there, OpenVINO issue 37577) and compiles it again for
    every new input shape. A video's last, shorter batch cost two compiles of 0.4-0.9 s
    each, as long as the rest of a 10 s clip; a few blank frames cost milliseconds.
    """
    batches = []
    for start in range(0, len(images), size):
        real = list(images[start : start + size])
        blank = np.zeros_like(real[-1])
        batches.append(([*real, *([blank] * (size - len(real)))], len(real)))
    return batches


def weights_id(path: Path) -> str:
    """Name and content hash of the weights, recorded with every video processed."""
    digest = hashlib.sha256()
    if path.is_dir():  # an exported model is a folder (OpenVINO)
        for part in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(part.read_bytes())
    else:
        digest.update(path.read_bytes())
    return f"{path.name}@{digest.hexdigest()[:12]}"


def openvino_export(weights: Path, imgsz: int, cache: Path) -> Path:
    """The OpenVINO IR of .pt weights, exported once and cached by their content, the
    input size and ultralytics' version. Written under a file lock and moved into place
    whole, so processes starting together export once and never load half an export."""
    from ultralytics import YOLO, __version__  # type: ignore[attr-defined]

    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    target = cache / f"{weights.stem}-{digest}-{imgsz}-ultralytics{__version__}_openvino_model"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            with tempfile.TemporaryDirectory(dir=cache) as scratch:
                copy = Path(scratch) / weights.name  # ultralytics exports beside the weights
                shutil.copyfile(weights, copy)
                exported = YOLO(str(copy), task="detect").export(
                    format="openvino", imgsz=imgsz, dynamic=True, half=False, device="cpu"
                )
                Path(exported).rename(target)
    return target


class YoloDetector:
    def __init__(self, weights: Path, options: YoloOptions) -> None:
        if not weights.exists():
            # ultralytics would try to download a missing file: never at run time.
            raise FileNotFoundError(f"detector weights not found at {weights} (DETECTOR_WEIGHTS)")
        # Imported here: torch loads only when a model does.
        from ultralytics import YOLO  # type: ignore[attr-defined]

        self.options = options
        self.model_id = weights_id(weights)
        self._model: Any = YOLO(str(weights), task="detect")
        self._imgsz = self._size(options.imgsz, self._model, weights)
        self.runtime = "torch" if weights.suffix == ".pt" else "export"
        if weights.suffix == ".pt" and options.runtime == "openvino":
            try:
                exported = openvino_export(weights, self._imgsz, options.cache_dir)
            except OSError as exc:  # a read-only cache: still works, only slower
                log.warning("OpenVINO export not possible (%s); running the weights in torch", exc)
            else:
                self._model = YOLO(str(exported), task="detect")
                self.runtime = "openvino"
                self.model_id += "+openvino"
        self._lock = threading.Lock()  # one inference at a time on one model

    @staticmethod
    def _size(configured: int | None, model: Any, weights: Path) -> int:
        """Inference size: the setting, else the weights' training size (an export's
        metadata.yaml for an exported model), else 384."""
        trained = dict(getattr(model, "overrides", {}) or {}).get("imgsz")
        if trained is None and (weights / "metadata.yaml").is_file():
            import yaml

            exported = yaml.safe_load((weights / "metadata.yaml").read_text()).get("imgsz")
            trained = exported[0] if isinstance(exported, list) and exported else exported
        return configured or (trained if isinstance(trained, int) else None) or 384

    @property
    def batch_size(self) -> int:
        return self.options.batch_size

    @property
    def imgsz(self) -> int:
        return self._imgsz

    @property
    def labels(self) -> list[str]:
        return [str(name) for name in dict(self._model.names).values()]

    def warm_up(self) -> None:
        """Build the predictor and run a full batch, so the first video does not pay for
        it (nor for a compile at the batch's shape, where shapes are static)."""
        blank = [np.zeros((360, 640, 3), np.uint8)] * self.batch_size
        self.detect(blank)
        self.detect(blank)  # where shapes are static, the first call's was a square

    def detect(self, images: Sequence[Image]) -> list[list[Detection]]:
        if not images:
            return []
        o = self.options
        with self._lock:
            if getattr(self._model, "predictor", None) is None:
                # ultralytics compiles its OpenVINO model when the first call builds the
                # predictor: that compile is where threads and precision can be given.
                in_torch = self.runtime == "torch"
                config = {} if in_torch else openvino_cpu_config(o.openvino_threads)
                with _compiling_with(config):
                    results = self._predict(images)
            elif self._static_shapes():
                # ultralytics letterboxes a static model's input to the size its backend
                # names (the export's square) whatever imgsz a call gives: a 16:9 frame
                # would be 1.6 times the pixels of the rectangle it needs.
                self._model.predictor.model.backend.imgsz = list(
                    letterbox_shape(images[0].shape[:2], self.imgsz)
                )
                results = []
                for batch, real in fixed_batches(images, self.batch_size):
                    results += self._predict(batch)[:real]
            else:
                results = self._predict(images)
        return [self._detections(r) for r in results]

    def _static_shapes(self) -> bool:
        compiled = self._compiled_openvino_model()
        return compiled is not None and bool(compiled.input().get_partial_shape().is_static)

    def _compiled_openvino_model(self) -> Any:
        backend = getattr(getattr(self._model, "predictor", None), "model", None)
        return getattr(backend, "ov_compiled_model", None)

    def _predict(self, images: Sequence[Image]) -> Any:
        o = self.options
        return self._model.predict(
            list(images),
            imgsz=self.imgsz,
            conf=o.confidence,
            iou=o.iou,
            max_det=o.max_detections,
            agnostic_nms=True,
            device=o.device,
            batch=len(images),
            verbose=False,
        )

    @property
    def openvino_threads(self) -> int | None:
        """The inference threads OpenVINO runs this model with (None: not OpenVINO, or
        no predictor built yet)."""
        compiled = self._compiled_openvino_model()
        if compiled is None:
            return None
        try:
            return int(compiled.get_property("INFERENCE_NUM_THREADS"))
        except RuntimeError:  # compiled for "AUTO": the count is its CPU plugin's
            return None

    @staticmethod
    def _detections(result: Any) -> list[Detection]:
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return []
        corners = boxes.xyxyn.cpu().numpy()
        confidences = boxes.conf.cpu().numpy()
        classes = boxes.cls.cpu().numpy().astype(int)
        names = result.names
        return [
            Detection(Box.clipped(*map(float, xyxy)), float(conf), str(names.get(int(cls), cls)))
            for xyxy, conf, cls in zip(corners, confidences, classes, strict=True)
        ]
