"""Export the trained detector to ONNX and compare CPU inference speed of .pt and .onnx.

    nice -n 10 python services/detector/training/compare_formats.py \
        --weights services/detector/models/shopbench-yolov8n.pt --data /tmp/shopbench/full-7

Measures the network alone (PyTorch vs ONNX Runtime, same input tensors) and ultralytics'
whole predict call (letterbox, network, NMS), at batch 1 and batch 8, on validation frames.
Prints wall milliseconds per frame (what throughput sees, on a shared machine too) and CPU
milliseconds per frame (all threads together: the cost, steadier under load). Writes the
figures to <weights>.speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from train import offline_ultralytics


def _timed(run: Callable[[], object], frames: int, repeats: int) -> dict[str, float]:
    run()  # warm up: first calls allocate and pick kernels
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append((time.perf_counter() - wall) * 1000 / frames)
        cpus.append((time.process_time() - cpu) * 1000 / frames)
    return {
        "wall_ms": round(statistics.median(walls), 2),
        "cpu_ms": round(statistics.median(cpus), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="a ShopBench dataset folder")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vitrine-detector-training"
    )
    args = parser.parse_args(argv)

    offline_ultralytics(args.workdir)
    import numpy as np
    import onnxruntime as ort
    import torch
    from PIL import Image
    from ultralytics.models import YOLO

    torch.set_num_threads(args.threads)
    weights = args.weights.resolve()
    onnx_path = Path(
        YOLO(str(weights)).export(
            format="onnx", imgsz=args.imgsz, dynamic=True, simplify=False, device="cpu"
        )
    )
    frames = sorted((args.data / "yolo" / "images" / "val").glob("*.jpg"))[:8]
    pictures = [np.asarray(Image.open(f).convert("RGB"))[..., ::-1].copy() for f in frames]  # BGR

    network = YOLO(str(weights)).model.float().eval()  # type: ignore[union-attr]
    network = network.fuse()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    results: dict[str, Any] = {
        "imgsz": args.imgsz,
        "threads": args.threads,
        "onnx": onnx_path.name,
        "onnx_bytes": onnx_path.stat().st_size,
        "pt_bytes": weights.stat().st_size,
        "network": {},
        "predict": {},
    }
    # Landscape 16:9 frames letterboxed the way ultralytics does for a .pt (rect, stride 32)
    # and square, the way a fixed-shape export would need them.
    h_rect = int(np.ceil(args.imgsz * 9 / 16 / 32) * 32)
    for shape_name, (h, w) in {
        "square": (args.imgsz, args.imgsz),
        "16:9": (h_rect, args.imgsz),
    }.items():
        for batch in (1, 8):
            x = torch.rand(batch, 3, h, w)
            xn = x.numpy()

            def run_torch(x: torch.Tensor = x) -> object:
                with torch.inference_mode():
                    return network(x)

            def run_onnx(xn: Any = xn) -> object:
                return session.run(None, {input_name: xn})

            key = f"{shape_name} batch {batch}"
            results["network"][key] = {
                "pt": _timed(run_torch, batch, args.repeats),
                "onnx": _timed(run_onnx, batch, args.repeats),
            }
            print(key, json.dumps(results["network"][key]))

    for name, model in {
        "pt": YOLO(str(weights)),
        "onnx": YOLO(str(onnx_path), task="detect"),
    }.items():
        for batch in (1, 8):
            chunk = pictures[:batch]

            def run_predict(model: Any = model, chunk: list[Any] = chunk) -> object:
                return model.predict(
                    chunk, imgsz=args.imgsz, device="cpu", verbose=False, conf=0.25
                )

            results["predict"][f"{name} batch {batch}"] = _timed(run_predict, batch, args.repeats)
            print(name, batch, results["predict"][f"{name} batch {batch}"])

    out = weights.with_suffix(".speed.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
