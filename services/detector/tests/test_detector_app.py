"""The YOLO adapter with a real (untrained) ultralytics model, and the service as a process
under the embedded platform: real broker, PostgreSQL, decoder and model."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import ultralytics
from detector_videos import one_square_video, uploaded

from vitrine_detector.adapters.yolo import (
    Runtime,
    YoloDetector,
    YoloOptions,
    fixed_batches,
    letterbox_shape,
    openvino_cpu_config,
    weights_id,
)
from vitrine_detector.domain.boxes import iou
from vitrine_detector.domain.tracking import Detection
from vitrine_detector.settings import DEFAULT_WEIGHTS
from vitrine_runtime.media import LocalMediaStore
from vitrine_runtime.testing import run_in_fresh_python
from vitrine_schemas.envelope import Envelope
from vitrine_stack.client import PlatformClient, eventually
from vitrine_stack.platform import EmbeddedPlatform


@pytest.fixture(scope="module")
def untrained_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """YOLOv8n built from its yaml: random weights, the plumbing of the real thing."""
    from ultralytics import YOLO  # type: ignore[attr-defined]

    path = tmp_path_factory.mktemp("weights") / "untrained-yolov8n.pt"
    YOLO("yolov8n.yaml").save(str(path))
    return path


@pytest.fixture(scope="module")
def eager_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained YOLOv8n whose class scores are pushed up: it "sees" objects everywhere,
    so every box goes through the conversion a trained model's would."""
    import torch
    from ultralytics import YOLO  # type: ignore[attr-defined]

    model: Any = YOLO("yolov8n.yaml")
    with torch.no_grad():
        for branch in model.model.model[-1].cv3:
            branch[-1].bias.add_(12.0)
    path = tmp_path_factory.mktemp("weights") / "eager-yolov8n.pt"
    model.save(str(path))
    return path


def test_missing_weights_are_refused_before_ultralytics_can_try_a_download(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileNotFoundError, match="DETECTOR_WEIGHTS"):
        YoloDetector(tmp_path / "nope.pt", YoloOptions())


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["openvino", "torch"])
def test_the_yolo_adapter_detects_a_batch_of_frames(
    eager_weights: Path, runtime: Runtime, tmp_path: Path
) -> None:
    options = YoloOptions(imgsz=320, max_detections=20, runtime=runtime, cache_dir=tmp_path)
    detector = YoloDetector(eager_weights, options)
    assert detector.runtime == runtime
    assert detector.imgsz == 320
    frames = [np.random.default_rng(n).integers(0, 255, (360, 640, 3), np.uint8) for n in range(3)]

    per_frame = detector.detect(frames)

    assert len(per_frame) == 3
    [d for frame in per_frame for d in frame]
    assert all(len(frame) == 20 for frame in per_frame)  # max_detections, per frame
    for d in [d for frame in per_frame for d in frame]:
        assert 0 <= d.box.x1 <= d.box.x2 <= 1
        assert 0 <= d.box.y1 <= d.box.y2 <= 1
        assert 0.25 <= d.confidence <= 1
        assert d.label in detector.labels
    assert detector.detect([]) == []
    assert weights_id(eager_weights).startswith("eager-yolov8n.pt@")
    assert weights_id(eager_weights) == weights_id(eager_weights)
    if runtime == "openvino":  # exported once, beside nothing but the cache
        assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [
            next(p.name for p in tmp_path.iterdir() if p.name.endswith("_openvino_model"))
        ]
        again = YoloDetector(eager_weights, options)
        assert again.detect(frames) == per_frame


@pytest.mark.slow
def test_the_default_weights_are_the_int8_export_at_the_size_it_was_made_for() -> None:
    """The committed INT8 model runs as it is (no export at start), at the 416 px its
    metadata names, and finds what the float weights it was made from find most surely.
    (Quantization moves weak, out-of-domain detections more: how much recall it keeps on
    ShopBench is measured by `make eval`, see the model card.)"""
    quantized = YoloDetector(DEFAULT_WEIGHTS, YoloOptions(confidence=0.15))
    float_model = YoloDetector(
        DEFAULT_WEIGHTS.parent / "shopbench-yolo.pt", YoloOptions(imgsz=416, confidence=0.15)
    )
    assert (quantized.runtime, quantized.imgsz) == ("export", 416)
    assert quantized.model_id.startswith("shopbench-yolo-int8-416_openvino_model@")
    photo = Path(ultralytics.__file__).parent / "assets" / "zidane.jpg"  # ships in the wheel
    frame = cv2.imread(str(photo))

    [seen] = quantized.detect([frame])
    [expected] = float_model.detect([frame])

    surest = max(expected, key=lambda d: d.confidence)
    match = max(seen, key=lambda d: iou(d.box, surest.box))
    assert iou(match.box, surest.box) >= 0.8
    assert abs(match.confidence - surest.confidence) < 0.1
    for detection in seen:
        assert 0 <= detection.box.x1 <= detection.box.x2 <= 1
        assert 0.15 <= detection.confidence <= 1


def test_fixed_batches_fill_the_last_with_blank_frames() -> None:
    frames = [np.full((4, 6, 3), n, np.uint8) for n in range(1, 10)]

    batches = fixed_batches(frames, 4)

    assert [(len(batch), real) for batch, real in batches] == [(4, 4), (4, 4), (4, 1)]
    assert [int(f[0, 0, 0]) for batch, _ in batches for f in batch] == [
        *range(1, 10),
        0,
        0,
        0,
    ]
    assert all(f.shape == (4, 6, 3) for batch, _ in batches for f in batch)
    assert fixed_batches(frames[:4], 4) == [(frames[:4], 4)]
    assert fixed_batches([], 4) == []


def test_the_compile_asks_for_the_quota_threads_and_f32_under_an_isa_cap() -> None:
    assert openvino_cpu_config(None, {}) == {}
    assert openvino_cpu_config(2, {}) == {"INFERENCE_NUM_THREADS": 2}
    assert openvino_cpu_config(None, {"ONEDNN_MAX_CPU_ISA": "AVX2"}) == {
        "INFERENCE_PRECISION_HINT": "f32"
    }
    assert openvino_cpu_config(1, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}) == {
        "INFERENCE_NUM_THREADS": 1
    }


def test_the_letterbox_is_the_frame_scaled_to_the_size_and_rounded_to_the_stride() -> None:
    assert letterbox_shape((720, 1280), 416) == (256, 416)  # 234 rounded up
    assert letterbox_shape((1920, 1080, 3), 416) == (416, 256)
    assert letterbox_shape((500, 500), 416) == (416, 416)
    assert letterbox_shape((1080, 1920), 320) == (192, 320)  # 180 rounded up
    assert letterbox_shape((10, 1000), 416) == (32, 416)  # never under one stride


@pytest.mark.slow
def test_a_short_batch_costs_no_compile_and_finds_what_each_frame_alone_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A video's last batch is short. Where ultralytics runs the INT8 model at static
    shapes (AMX CPUs) each new shape was a compile of 0.4-0.9 s, and every frame went in
    as a square; now a video's frames go in as their own rectangle, padded with blank
    frames to a full batch: no compile after warm-up for 16:9 frames, and the blanks
    (one here, three for a frame alone) change nothing in the real frames' detections."""
    import openvino as ov

    real_compile = ov.Core.compile_model
    compiles: list[object] = []

    def spy(core: Any, *args: Any, **kwargs: Any) -> Any:
        compiles.append(args[0])
        return real_compile(core, *args, **kwargs)

    # Before the model loads: ultralytics binds compile_model then, for its recompiles.
    monkeypatch.setattr(ov.Core, "compile_model", spy)
    detector = YoloDetector(DEFAULT_WEIGHTS, YoloOptions(confidence=0.15))
    detector.warm_up()
    compiles.clear()
    photo = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
    frames = [photo, cv2.flip(photo, 1), cv2.resize(photo, None, fx=0.5, fy=0.5)]
    frames = [cv2.resize(f, (1280, 720)) for f in frames]

    together = detector.detect(frames)
    longer = detector.detect(frames * 3)  # 9 frames: two full batches and one padded
    alone = [detector.detect([frame])[0] for frame in frames]

    assert compiles == []
    assert sum(map(len, alone)) > 0
    _assert_same_detections(together, alone)
    _assert_same_detections(longer, alone * 3)
    if detector._static_shapes():  # AMX: the network saw the 16:9 rectangle
        shape = detector._compiled_openvino_model().input().get_partial_shape()
        assert [int(d.get_length()) for d in shape] == [4, 3, 256, 416]


def _assert_same_detections(seen: list[list[Detection]], expected: list[list[Detection]]) -> None:
    assert len(seen) == len(expected)
    for got, wanted in zip(seen, expected, strict=True):
        assert [d.label for d in got] == [d.label for d in wanted]
        for g, w in zip(got, wanted, strict=True):
            assert iou(g.box, w.box) > 0.98
            assert g.confidence == pytest.approx(w.confidence, abs=0.02)


def test_a_cpu_quota_reaches_the_openvino_model_ultralytics_compiles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ultralytics compiles its OpenVINO model itself; the thread count the service derives
    from a container's CPU quota must reach that compile, and only that one."""
    import openvino as ov

    real_compile = ov.Core.compile_model
    seen: list[int] = []  # the CPU plugin's thread count on each core ultralytics compiles with

    def spy(core: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(int(core.get_property("CPU", "INFERENCE_NUM_THREADS")))
        return real_compile(core, *args, **kwargs)

    monkeypatch.setattr(ov.Core, "compile_model", spy)
    frame = np.zeros((360, 640, 3), np.uint8)
    capped = YoloDetector(DEFAULT_WEIGHTS, YoloOptions(openvino_threads=1))
    free = YoloDetector(DEFAULT_WEIGHTS, YoloOptions())
    assert capped.openvino_threads is None  # no predictor yet

    capped.detect([frame])
    capped.detect([frame, frame])  # a new input shape
    capped_compiles, seen[:] = seen[:], []
    free.detect([frame])

    # One compile per model, except on AMX CPUs, where ultralytics compiles an INT8 model
    # again for every new input shape (OpenVINO issue 37577) through the same bound method:
    # each of the capped model's compiles runs on the quota's count, none of the other's.
    assert set(capped_compiles) == {1}
    assert set(seen) == {0}  # nothing set: OpenVINO's own choice
    assert capped.openvino_threads == 1
    ir = next(DEFAULT_WEIGHTS.glob("*.xml"))
    own = real_compile(ov.Core(), str(ir), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    assert free.openvino_threads == int(own.get_property("INFERENCE_NUM_THREADS"))
    assert ov.Core.compile_model is spy  # the hook is gone once compiled


def test_an_isa_cap_without_bf16_makes_the_compile_ask_for_f32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OpenVINO picks bf16 from CPUID; under ONEDNN_MAX_CPU_ISA=AVX2 the compile must ask
    for f32, and without a cap it must be left to OpenVINO."""
    import openvino as ov

    real_compile = ov.Core.compile_model
    hints: list[str] = []

    def spy(core: Any, *args: Any, **kwargs: Any) -> Any:
        hints.append(str(core.get_property("CPU", "INFERENCE_PRECISION_HINT")))
        return real_compile(core, *args, **kwargs)

    monkeypatch.setattr(ov.Core, "compile_model", spy)
    frame = np.zeros((360, 640, 3), np.uint8)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    YoloDetector(DEFAULT_WEIGHTS, YoloOptions()).detect([frame])
    uncapped, hints[:] = hints[:], []
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    YoloDetector(DEFAULT_WEIGHTS, YoloOptions()).detect([frame])

    own = str(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT"))
    assert set(uncapped) == {own}
    assert set(hints) == {"<Type: 'float32'>"}


def test_the_detector_runs_under_an_avx2_cap() -> None:
    """oneDNN reads the cap once per process, hence a process of its own: on a CPU with
    native bf16, ONEDNN_MAX_CPU_ISA=AVX2 made the INT8 model's compile fail."""
    script = (
        "import numpy as np\n"
        "from vitrine_detector.adapters.yolo import YoloDetector, YoloOptions\n"
        "from vitrine_detector.settings import DEFAULT_WEIGHTS\n"
        "d = YoloDetector(DEFAULT_WEIGHTS, YoloOptions(openvino_threads=1))\n"
        "print(len(d.detect([np.zeros((360, 640, 3), np.uint8)])), d.openvino_threads)\n"
    )
    output = run_in_fresh_python(script, ONEDNN_MAX_CPU_ISA="AVX2")
    assert output.split()[-2:] == ["1", "1"]


def test_the_composition_root_sizes_every_engine_to_the_quota(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pod limited to one CPU on a 64-core node: torch, OpenVINO and FFmpeg each get one
    thread, unless a setting names a count."""
    import torch

    from vitrine_detector import app
    from vitrine_detector.settings import DetectorSettings
    from vitrine_runtime.cores import CpuBudget

    monkeypatch.setattr(app, "cpu_budget", lambda: CpuBudget(visible=64, quota=1.0))
    opened: list[int] = []

    def recording_opener(threads: int, *args: Any) -> Any:
        opened.append(threads)
        return None

    monkeypatch.setattr(app, "open_with_pyav", recording_opener)
    torch_threads = torch.get_num_threads()
    try:
        detector = app.load_detector(DetectorSettings())
        assert (detector.openvino_threads, torch.get_num_threads()) == (1, 1)
    finally:
        torch.set_num_threads(torch_threads)

    app.video_opener(DetectorSettings())
    app.video_opener(DetectorSettings(decoder_threads=3))
    assert opened == [1, 3]


@pytest.mark.slow
@pytest.mark.e2e
async def test_the_service_runs_under_the_embedded_platform(
    tmp_path: Path, untrained_weights: Path
) -> None:
    env = {"DETECTOR_WEIGHTS": str(untrained_weights), "DETECTOR_TORCH_THREADS": "1"}
    async with EmbeddedPlatform(
        tmp_path / "platform", services=["detector"], fresh=True, service_env={"detector": env}
    ) as platform:
        media = LocalMediaStore(platform.media_root)
        good = await media.put("videos/good.mp4", one_square_video()[0], "video/mp4")
        text = await media.put("videos/text.mp4", b"not a video\n" * 50, "video/mp4")
        ids = {name: f"vid-{name}-{uuid.uuid4().hex[:6]}" for name in ("good", "ssrf", "text")}
        urls = {"detector": platform.service_url("detector")}
        async with PlatformClient(urls, platform.bootstrap_servers) as client:
            await client.publish(Envelope.wrap(uploaded(ids["good"], good), producer="test"))
            await client.publish(
                Envelope.wrap(
                    uploaded(ids["ssrf"], "http://169.254.169.254/latest/meta-data"),
                    producer="test",
                )
            )
            await client.publish(Envelope.wrap(uploaded(ids["text"], text), producer="test"))

            def outcome(video_id: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
                async def probe() -> dict[str, Any] | None:
                    response = await client["detector"].get(f"/videos/{video_id}")
                    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]

                return probe

            seen = {
                name: await eventually(outcome(video_id), timeout_s=90, what=f"{name} handled")
                for name, video_id in ids.items()
            }
            assert seen["good"]["outcome"] == "processed"
            assert seen["good"]["model"].startswith("untrained-yolov8n.pt@")
            assert seen["ssrf"]["reason_code"] == "outside_store"
            assert seen["text"]["reason_code"] == "unsupported"

            # The failures reach the broker through the outbox relay.
            def failed(records: list[object]) -> set[str]:
                return {
                    json.loads(r.value)["data"]["video_id"]  # type: ignore[attr-defined]
                    for r in records
                    if dict(r.headers).get("event-type") == b"video.failed"  # type: ignore[attr-defined]
                }

            records = await client.read_topic(
                "videos", lambda rs: {ids["ssrf"], ids["text"]} <= failed(rs), timeout_s=60
            )
            assert ids["good"] not in failed(records)
            metrics = (await client["detector"].get("/metrics")).text
            assert 'vitrine_detector_videos_total{outcome="failed"} 2.0' in metrics
            assert 'vitrine_detector_frames_total{stage="sampled"}' in metrics
