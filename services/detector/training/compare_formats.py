"""Which runtime should the detector use on CPU? PyTorch against the OpenVINO export,
both through the service's own adapter (letterbox, network, NMS), on validation frames.

    nice -n 10 python services/detector/training/compare_formats.py \\
        --weights services/detector/models/shopbench-yolo.pt --data /tmp/shopbench/full-7

Prints wall and CPU milliseconds per frame at batch 1 and at the service's batch (4), and
how well the two agree: boxes matched one to one at IoU >= 0.5, their mean IoU, and the
largest confidence difference. Writes the figures to <weights>.speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vitrine_detector.adapters.yolo import YoloDetector, YoloOptions
from vitrine_detector.domain.boxes import iou


def timed(detector: YoloDetector, frames: list[Any], batch: int, repeats: int) -> dict[str, float]:
    detector.detect(frames[:batch])  # warm up: first calls allocate and pick kernels
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(frames), batch):
            detector.detect(frames[start : start + batch])
        walls.append((time.perf_counter() - wall) * 1000 / len(frames))
        cpus.append((time.process_time() - cpu) * 1000 / len(frames))
    return {
        "wall_ms": round(statistics.median(walls), 2),
        "cpu_ms": round(statistics.median(cpus), 2),
    }


def agreement(a: YoloDetector, b: YoloDetector, frames: list[Any]) -> dict[str, float]:
    matched = only_one = 0
    overlaps, confidence_gaps = [], []
    for left, right in zip(a.detect(frames), b.detect(frames), strict=True):
        free = list(right)
        for d in left:
            best = max(free, key=lambda e: iou(d.box, e.box), default=None)
            if best is None or iou(d.box, best.box) < 0.5:
                only_one += 1
                continue
            free.remove(best)
            matched += 1
            overlaps.append(iou(d.box, best.box))
            confidence_gaps.append(abs(d.confidence - best.confidence))
        only_one += len(free)
    return {
        "boxes_matched": matched,
        "boxes_in_one_only": only_one,
        "mean_iou": round(float(np.mean(overlaps)), 4) if overlaps else 0.0,
        "max_confidence_gap": round(max(confidence_gaps, default=0.0), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="a ShopBench dataset folder")
    parser.add_argument("--imgsz", type=int)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    files = sorted((args.data / "yolo" / "images" / "val").glob("*.jpg"))[: args.frames]
    frames = [np.asarray(Image.open(f).convert("RGB"))[..., ::-1].copy() for f in files]  # BGR
    with tempfile.TemporaryDirectory() as cache:
        detectors = {
            runtime: YoloDetector(
                args.weights,
                YoloOptions(
                    imgsz=args.imgsz, confidence=0.1, runtime=runtime, cache_dir=Path(cache)
                ),
            )
            for runtime in ("torch", "openvino")
        }
        results: dict[str, Any] = {"imgsz": detectors["torch"].imgsz, "frames": len(frames)}
        for runtime, detector in detectors.items():
            results[runtime] = {
                f"batch {batch}": timed(detector, frames, batch, args.repeats) for batch in (1, 4)
            }
            print(runtime, detector.runtime, json.dumps(results[runtime]), flush=True)
        results["agreement"] = agreement(detectors["torch"], detectors["openvino"], frames)
    print(json.dumps(results["agreement"]))
    out = args.weights.with_suffix(".speed.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
