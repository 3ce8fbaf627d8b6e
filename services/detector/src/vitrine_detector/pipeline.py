"""From decoded frames to tracked objects: sample, detect in batches, track, keep crops.

The pipeline is synchronous, CPU-bound code (run it in a worker thread). It knows its
collaborators only by the protocols below: the PyAV frame source and the YOLO detector
in production, generated frames and a scripted detector in tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from vitrine_detector.adapters.images import cut_out
from vitrine_detector.domain.appearance import describe
from vitrine_detector.domain.crops import (
    BestCrops,
    CropCandidate,
    CropParams,
    Image,
    score_view,
)
from vitrine_detector.domain.lighting import LightingParams, ShotLight, relit
from vitrine_detector.domain.limits import VideoLimits, check_complete
from vitrine_detector.domain.sampling import AdaptiveSampler, SamplingParams, Signature
from vitrine_detector.domain.tracking import (
    Detection,
    Observation,
    Track,
    Tracker,
    TrackFilter,
    TrackingParams,
    stitch,
)
from vitrine_detector.prefetch import prefetch


@dataclass(frozen=True, slots=True)
class VideoInfo:
    width: int
    height: int
    duration_s: float | None  # as declared by the container; None when it declares none
    fps: float
    codec: str
    container: str


class DecodedFrame(Protocol):
    @property
    def t(self) -> float: ...  # seconds from the start of the video

    def signature(self) -> Signature: ...  # cheap: made for every decoded frame

    def image(self) -> Image: ...  # full resolution BGR: made only for sampled frames


class FrameSource(Protocol):
    @property
    def info(self) -> VideoInfo: ...

    def frames(self) -> Iterator[DecodedFrame]: ...


class ObjectDetector(Protocol):
    @property
    def batch_size(self) -> int: ...

    def detect(self, images: Sequence[Image]) -> list[list[Detection]]: ...


class Cancelled(Exception):
    """The service is stopping; the video will be processed again after restart."""


@dataclass(frozen=True, slots=True)
class PipelineParams:
    sampling: SamplingParams = field(default_factory=SamplingParams)
    tracking: TrackingParams = field(default_factory=TrackingParams)
    crops: CropParams = field(default_factory=CropParams)
    lighting: LightingParams = field(default_factory=LightingParams)
    track_filter: TrackFilter = field(default_factory=TrackFilter)
    max_boxes_per_track: int = 64
    # Sampled frames decoded ahead in a background thread while the detector runs; 0
    # decodes in the calling thread, one thing at a time.
    decode_ahead: int = 0


@dataclass(slots=True)
class PipelineStats:
    frames_decoded: int = 0
    frames_sampled: int = 0
    frames_inferred: int = 0
    detections: int = 0
    tracklets: int = 0
    tracks_dropped: int = 0
    last_frame_s: float | None = None
    decode_s: float = 0.0  # demuxing, decoding, signatures, colour conversion (may overlap)
    detect_s: float = 0.0  # the detector's calls
    track_s: float = 0.0  # tracking, crop scoring and cutting


@dataclass(frozen=True, slots=True)
class DetectedObject:
    track: Track
    boxes: tuple[Observation, ...]  # spread evenly over the track, at most max_boxes
    crops: tuple[CropCandidate, ...]  # best views, in time order


@dataclass(frozen=True, slots=True)
class PipelineResult:
    objects: list[DetectedObject]
    stats: PipelineStats


@dataclass(slots=True)
class _Sampled:
    t: float
    image: Image
    scene_cut: bool


class _Run:
    def __init__(
        self,
        detector: ObjectDetector,
        params: PipelineParams,
        cancel: threading.Event | None,
    ) -> None:
        self.detector = detector
        self.params = params
        self.cancel = cancel
        self.stats = PipelineStats()
        self.sampler = AdaptiveSampler(params.sampling)
        self.tracker = Tracker(params.tracking)
        self.crops: dict[int, BestCrops] = {}
        self.light = ShotLight(params.lighting)
        self.batch: list[_Sampled] = []

    def consume(self, source: FrameSource, limits: VideoLimits) -> None:
        sampled = prefetch(self._sampled(source, limits), self.params.decode_ahead, "decode")
        for frame in sampled:
            self.batch.append(frame)
            if len(self.batch) >= max(1, self.detector.batch_size):
                self.flush()
        self.flush()

    def _sampled(self, source: FrameSource, limits: VideoLimits) -> Iterator[_Sampled]:
        """Decode every frame, keep the ones the sampler picks (maybe in another thread)."""
        frames = iter(source.frames())
        while True:
            started = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                self.stats.decode_s += time.perf_counter() - started
                return
            if self.cancel is not None and self.cancel.is_set():
                raise Cancelled
            self.stats.frames_decoded += 1
            self.stats.last_frame_s = frame.t
            limits.check_duration(frame.t, declared=False)  # containers may understate it
            decision = self.sampler.offer(frame.t, frame.signature())
            picked = None
            if decision is not None:
                picked = _Sampled(frame.t, frame.image(), decision.scene_cut)
                self.stats.frames_sampled += 1
            self.stats.decode_s += time.perf_counter() - started
            if picked is not None:
                yield picked

    def flush(self) -> None:
        if not self.batch:
            return
        started = time.perf_counter()
        per_frame = self.detector.detect([s.image for s in self.batch])
        if len(per_frame) != len(self.batch):
            raise RuntimeError("the detector returned results for a different number of frames")
        self.stats.detect_s += time.perf_counter() - started
        self.stats.frames_inferred += len(self.batch)
        started = time.perf_counter()
        for sampled, detections in zip(self.batch, per_frame, strict=True):
            self._track(sampled, detections)
        self.batch = []
        self.stats.track_s += time.perf_counter() - started

    def _track(self, sampled: _Sampled, detections: list[Detection]) -> None:
        self.stats.detections += len(detections)
        if sampled.scene_cut:
            self.tracker.cut()
        gains = self.light.gains(sampled.image, sampled.scene_cut)
        appearances = [describe(sampled.image, d.box) for d in detections]
        assigned = self.tracker.update(sampled.t, detections, appearances)
        for detection, tracklet in zip(detections, assigned, strict=True):
            if tracklet is None:
                continue
            best = self.crops.setdefault(tracklet, BestCrops(self.params.crops))
            quality = score_view(
                sampled.image, detection.box, detection.confidence, self.params.crops
            )
            if best.wants(sampled.t, quality):
                crop = relit(cut_out(sampled.image, detection.box, self.params.crops), gains)
                best.offer(CropCandidate(sampled.t, quality, crop))

    def result(self) -> PipelineResult:
        tracklets = self.tracker.finish()
        self.stats.tracklets = len(tracklets)
        objects = []
        for track in stitch(tracklets, self.params.tracking):
            crops = BestCrops.of(
                self.params.crops,
                (
                    c
                    for tid in track.tracklet_ids
                    if tid in self.crops
                    for c in self.crops[tid].crops
                ),
            ).crops
            if not self.params.track_filter.keeps(track) or not crops:
                self.stats.tracks_dropped += 1
                continue
            boxes = spread(track.observations, self.params.max_boxes_per_track)
            objects.append(DetectedObject(track, boxes, tuple(crops)))
        return PipelineResult(objects, self.stats)


def spread(observations: Sequence[Observation], at_most: int) -> tuple[Observation, ...]:
    """At most `at_most` observations, evenly spaced, always the first and the last."""
    if len(observations) <= at_most:
        return tuple(observations)
    if at_most < 2:
        return tuple(observations[:at_most])
    last = len(observations) - 1
    picks = sorted({round(k * last / (at_most - 1)) for k in range(at_most)})
    return tuple(observations[i] for i in picks)


def detect_objects(
    source: FrameSource,
    detector: ObjectDetector,
    params: PipelineParams,
    limits: VideoLimits,
    cancel: threading.Event | None = None,
) -> PipelineResult:
    """Run the whole video through; raises VideoRejected for a video it must refuse."""
    info = source.info
    if info.width or info.height:  # some containers only tell once a frame is decoded
        limits.check_resolution(info.width, info.height)
    if info.duration_s is not None:
        limits.check_duration(info.duration_s)
    run = _Run(detector, params, cancel)
    run.consume(source, limits)
    check_complete(run.stats.last_frame_s, info.duration_s, info.fps)
    return run.result()
