"""Composition root of the detector service."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from fastapi import FastAPI

from vitrine_detector import handlers
from vitrine_detector.adapters.yolo import YoloDetector
from vitrine_detector.api.routes import router
from vitrine_detector.application import SourceOpener, VideoDetector, open_with_pyav
from vitrine_detector.settings import DetectorSettings
from vitrine_runtime.cores import cpu_budget
from vitrine_runtime.logging import get_logger
from vitrine_runtime.media import open_media_store
from vitrine_runtime.service import ServiceRuntime
from vitrine_schemas.events import ObjectsDetected, VideoFailed

MIGRATIONS = "vitrine_detector.migrations"

log = get_logger(__name__)


def build_runtime(settings: DetectorSettings) -> ServiceRuntime:
    return ServiceRuntime(
        settings,
        migrations=MIGRATIONS,
        produces=[ObjectsDetected, VideoFailed],
        description="Finds and tracks the objects in uploaded videos (with the creator's"
        " consent) and publishes one objects.detected per tracked object.",
    )


def load_detector(settings: DetectorSettings) -> YoloDetector:
    # Under a container's CPU quota the engines would count the node's cores, not the pod's.
    budget = cpu_budget()
    torch_threads = budget.inference_threads(settings.detector_torch_threads)
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    options = replace(
        settings.yolo_options(),
        openvino_threads=budget.inference_threads(settings.detector_openvino_threads),
    )
    detector = YoloDetector(settings.detector_weights, options)
    detector.warm_up()
    log.info(
        "detector_cores",
        budget=budget.describe(),
        openvino_threads=detector.openvino_threads,
        torch_threads=torch_threads or "torch's choice",
    )
    return detector


def video_opener(settings: DetectorSettings) -> SourceOpener:
    """Opens a video's bytes with PyAV as the settings say (threads, frames skipped)."""
    decoder_threads = settings.decoder_threads or cpu_budget().inference_threads(None) or 0
    return open_with_pyav(
        decoder_threads,
        settings.decoder_skip_non_reference,
        settings.decoder_skip_loop_filter,
    )


def create_app(settings: DetectorSettings | None = None) -> FastAPI:
    settings = settings or DetectorSettings()
    runtime = build_runtime(settings)
    app = runtime.create_app([router])

    def started_detector() -> VideoDetector:
        return app.state.detector  # type: ignore[no-any-return]

    handlers.register(runtime.consumer, started_detector)

    @runtime.on_start
    async def open_detector(rt: ServiceRuntime) -> None:
        model = await asyncio.to_thread(load_detector, settings)
        log.info(
            "detector_model_loaded",
            model=model.model_id,
            runtime=model.runtime,
            imgsz=model.imgsz,
            labels=model.labels[:10],
        )
        app.state.detector = VideoDetector(
            media=open_media_store(settings),
            detector=model,
            limits=settings.limits(),
            params=settings.pipeline_params(),
            envelope=rt.envelope,
            open_source=video_opener(settings),
            model_id=model.model_id,
        )

    return app


def main() -> None:
    settings = DetectorSettings()
    app = create_app(settings)
    app.state.runtime.serve(app)
