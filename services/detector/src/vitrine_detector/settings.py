"""Detector settings: the model, the limits on what it accepts, and how it samples,
tracks and crops. Environment variables, as everywhere (DETECTOR_WEIGHTS, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from vitrine_detector.adapters.yolo import YoloOptions
from vitrine_detector.domain.crops import CropParams
from vitrine_detector.domain.lighting import LightingParams
from vitrine_detector.domain.limits import VideoLimits
from vitrine_detector.domain.sampling import SamplingParams
from vitrine_detector.domain.tracking import TrackFilter, TrackingParams
from vitrine_detector.pipeline import PipelineParams
from vitrine_runtime.settings import ServiceSettings

# The trained, class-agnostic weights committed with the service (services/detector/models),
# quantized to INT8 at 416 px by training/quantize.py: at 320 px the float model missed
# small, far products (tracked 76 of 87 on four validation splits pooled; 416 px: 85), and
# INT8 at 416 costs about what bf16 at 320 did. The float weights it was made from
# (shopbench-yolo.pt) still work: DETECTOR_WEIGHTS=.../shopbench-yolo.pt.
MODELS = Path(__file__).resolve().parents[2] / "models"
DEFAULT_WEIGHTS = MODELS / "shopbench-yolo-int8-416_openvino_model"

MiB = 1024 * 1024


class DetectorSettings(ServiceSettings):
    service_name: str = "detector"

    # --- model ---------------------------------------------------------------------
    detector_weights: Path = Field(
        DEFAULT_WEIGHTS, description="YOLO detection weights (.pt, or an ultralytics export)"
    )
    detector_imgsz: int | None = Field(
        None,
        ge=64,
        le=1920,
        description="inference size in pixels; unset = the size the weights were trained"
        " or exported at (384 when they do not say)",
    )
    detector_confidence: float = Field(
        0.15,
        gt=0,
        lt=1,
        description="weakest detection kept; only those above track_high_confidence start a track",
    )
    detector_iou: float = Field(0.5, gt=0, lt=1, description="NMS overlap threshold")
    detector_max_detections: int = Field(50, ge=1, description="per frame")
    detector_batch_size: int = Field(4, ge=1, le=64, description="sampled frames per call")
    detector_device: str = Field("cpu", description="torch device: cpu, cuda:0, ...")
    detector_runtime: Literal["openvino", "torch"] = Field(
        "openvino",
        description=".pt weights run as a cached OpenVINO export (~1.8x faster on CPU) or"
        " in torch; exported weights run in their own runtime",
    )
    detector_cache_dir: Path = Field(
        Path("./.vitrine/models"), description="where the OpenVINO export of the weights is kept"
    )
    # Unset thread counts follow a container's CPU quota where it allows fewer threads
    # than the cores in sight (vitrine_runtime.cores.cpu_budget): the engines count cores.
    detector_torch_threads: int | None = Field(
        None, ge=1, description="torch intra-op threads; unset = the CPU quota, else one per core"
    )
    detector_openvino_threads: int | None = Field(
        None, ge=1, description="OpenVINO inference threads; unset = the CPU quota, else its own"
    )
    decoder_threads: int = Field(
        0, ge=0, description="FFmpeg decoding threads; 0 = the CPU quota, else automatic"
    )
    decoder_skip_non_reference: bool = Field(
        True, description="do not decode frames no other frame refers to (most B-frames)"
    )
    decoder_ahead: int = Field(
        8,
        ge=0,
        le=256,
        description="sampled frames decoded ahead in a background thread while the detector"
        " runs (overlaps the two on a small machine); 0 = decode inline",
    )
    decoder_skip_loop_filter: bool = Field(
        False, description="skip H.264 deblocking: faster decoding, slightly blockier crops"
    )

    # --- limits --------------------------------------------------------------------
    video_max_bytes: int = Field(512 * MiB, ge=1024)
    # Keep processing well inside the broker's max poll interval (5 min by default).
    video_max_duration_s: float = Field(180.0, gt=0)
    video_max_pixels: int = Field(
        1920 * 1080, ge=64 * 64, description="largest frame, width x height"
    )

    # --- sampling, tracking, crops ----------------------------------------------------
    # Chosen on ShopBench's validation split with the committed weights (issue 3 notes):
    # products on screen for half a second must still become a track, so sampling is
    # denser and a track may be two samples long; the matcher, judging 8 crops a track,
    # is what keeps things no shop sells untagged. From 1/2/6 fps, 3 samples, 4 crops:
    # tracked products 16 -> 20 of 21, recall 0.71 -> 0.86 at the same threshold, 10.6x
    # -> 9.8x real time over that split's mixed 720p/1080p (a busy machine).

    # --- sampling ------------------------------------------------------------------
    sample_min_fps: float = Field(2.0, gt=0, description="in a still shot")
    sample_base_fps: float = Field(4.0, gt=0, description="when the picture changes")
    sample_max_fps: float = Field(8.0, gt=0, description="under fast motion")
    sample_change_level: float = Field(
        0.06, gt=0, le=1, description="luma change of one signature cell that counts"
    )
    sample_still_threshold: float = Field(
        0.004, ge=0, le=1, description="share of the picture changed below which it is still"
    )
    sample_motion_threshold: float = Field(
        0.3, ge=0, le=1, description="share of the picture changed that asks for max fps"
    )
    sample_fast_pan: float = Field(
        0.15,
        gt=0,
        le=1,
        description="camera shift since the last sample (share of the frame) that asks for max fps",
    )
    sample_scene_cut_threshold: float = Field(0.4, gt=0, le=1)

    # --- tracking ------------------------------------------------------------------
    # 0.3, not 0.4: on ShopBench's eight validation splits (172 products) a track then
    # follows 167 products instead of 162 (track_study.py replay), and the matcher, at its
    # calibrated threshold, tags 122 of them right of 128 instead of 119 of 125. The
    # extra weak tracks (+14 %) are what the short-track rule and the threshold reject.
    track_high_confidence: float = Field(0.3, gt=0, lt=1)
    track_max_gap_s: float = Field(1.5, gt=0)
    track_stitch_max_gap_s: float = Field(4.0, ge=0)
    track_min_frames: int = Field(2, ge=1, description="samples a published track spans")
    track_min_duration_s: float = Field(0.25, ge=0, description="time a published track spans")
    track_min_confidence: float = Field(0.0, ge=0, lt=1)
    track_max_boxes: int = Field(64, ge=2, description="boxes per objects.detected")

    # --- crops ---------------------------------------------------------------------
    crops_per_track: int = Field(8, ge=1, le=16)
    crop_min_gap_s: float = Field(0.25, ge=0)
    crop_max_side_px: int = Field(512, ge=64)
    crop_min_side_px: int = Field(24, ge=8)
    crop_follow_light: bool = Field(
        False,
        description="show every crop of a shot in the shot's opening light (domain/lighting.py)",
    )

    def limits(self) -> VideoLimits:
        return VideoLimits(
            max_bytes=self.video_max_bytes,
            max_duration_s=self.video_max_duration_s,
            max_pixels=self.video_max_pixels,
        )

    def yolo_options(self) -> YoloOptions:
        """The model's options; its OpenVINO thread count is the composition root's call
        (DETECTOR_OPENVINO_THREADS, else the CPU budget: app.load_detector)."""
        return YoloOptions(
            imgsz=self.detector_imgsz,
            confidence=self.detector_confidence,
            iou=self.detector_iou,
            max_detections=self.detector_max_detections,
            batch_size=self.detector_batch_size,
            device=self.detector_device,
            runtime=self.detector_runtime if self.detector_device == "cpu" else "torch",
            cache_dir=self.detector_cache_dir,
        )

    def pipeline_params(self) -> PipelineParams:
        return PipelineParams(
            sampling=SamplingParams(
                min_fps=self.sample_min_fps,
                base_fps=self.sample_base_fps,
                max_fps=self.sample_max_fps,
                change_level=self.sample_change_level,
                still_threshold=self.sample_still_threshold,
                motion_threshold=self.sample_motion_threshold,
                fast_pan=self.sample_fast_pan,
                scene_cut_threshold=self.sample_scene_cut_threshold,
            ),
            tracking=TrackingParams(
                high_confidence=self.track_high_confidence,
                max_gap_s=self.track_max_gap_s,
                stitch_max_gap_s=self.track_stitch_max_gap_s,
            ),
            crops=CropParams(
                per_track=self.crops_per_track,
                min_gap_s=self.crop_min_gap_s,
                max_side_px=self.crop_max_side_px,
                min_side_px=self.crop_min_side_px,
            ),
            lighting=LightingParams(enabled=self.crop_follow_light),
            track_filter=TrackFilter(
                min_frames=self.track_min_frames,
                min_duration_s=self.track_min_duration_s,
                min_confidence=self.track_min_confidence,
            ),
            max_boxes_per_track=self.track_max_boxes,
            decode_ahead=self.decoder_ahead,
        )
