"""Quantize the detector to INT8 for the CPU: the same network at a larger input for the
price of the float one at the smaller.

    pip install -e 'services/detector[training]'        # NNCF, for this script only
    python -m vitrine_shopbench generate --seed 12 --out .vitrine/shopbench/seed-12-full \\
        --scale full --splits val --jobs 2                 # and 13, 14, 15, 16
    python services/detector/training/quantize.py \\
        --data .vitrine/shopbench/seed-1{2,3,4,5,6}-full --imgsz 416

Why: at 320 px the detector misses small, far products (on four ShopBench validation
splits pooled, 76 of 87 products were followed by some track; at 416 px, 85). 416 px in
float costs about twice the inference time, and the detector fell from half of pure
decoding speed to 0.41 of it. Post-training INT8 quantization (NNCF, on this CPU's
VNNI/AMX int8 kernels) brings 416 px back to about the cost of 320 px in bf16.

How: the .pt weights are exported to OpenVINO IR as the service exports them (dynamic
shapes, float32 weights), then NNCF's post-training quantization calibrates activation
ranges on `--frames` video frames, letterboxed exactly as ultralytics feeds the network.
The calibration frames come from ShopBench validation splits of seeds the project uses
for nothing else (12-16 by default: other catalogs, never the seeds the matcher is
calibrated on, never a test split). Ultralytics' own recipe is kept: the detect head's
box decoding (multiplications, subtractions, sigmoid) stays in float.

Writes an ultralytics OpenVINO model folder (`<name>_openvino_model`: IR, metadata.yaml
with the input size, and quantization.json saying how it was made); DETECTOR_WEIGHTS may
point at it, and the service runs it as it is (no export at start).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from vitrine_detector.adapters.yolo import openvino_export

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent / "models"
STRIDE = 32
PAD_VALUE = 114  # ultralytics' letterbox grey


def calibration_frames(roots: list[Path], split: str, count: int, seed: int) -> list[Any]:
    """`count` frames (RGB) drawn evenly from every video of the splits, then shuffled."""
    videos = sorted(p for root in roots for p in (root / "videos" / split).iterdir())
    if not videos:
        raise SystemExit(f"no {split} videos under {', '.join(map(str, roots))}")
    every = max(1, count // len(videos))
    frames: list[Any] = []
    for path in videos:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            total = stream.frames or 300
            step = max(1, total // every)
            for index, frame in enumerate(container.decode(stream)):
                if index % step == 0:
                    frames.append(frame.to_ndarray(format="rgb24"))
    random.Random(seed).shuffle(frames)
    return frames[:count]


def letterboxed(image: npt.NDArray[np.uint8], imgsz: int) -> npt.NDArray[np.float32]:
    """What ultralytics feeds the network for one frame: the long side scaled to `imgsz`,
    the short side padded to a multiple of the stride, NCHW in 0..1."""
    import cv2

    height, width = image.shape[:2]
    scale = imgsz / max(height, width)
    new_h, new_w = round(height * scale), round(width * scale)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_h, pad_w = (-new_h) % STRIDE, (-new_w) % STRIDE
    padded = cv2.copyMakeBorder(
        resized,
        pad_h // 2,
        pad_h - pad_h // 2,
        pad_w // 2,
        pad_w - pad_w // 2,
        cv2.BORDER_CONSTANT,
        value=(PAD_VALUE, PAD_VALUE, PAD_VALUE),
    )
    tensor: npt.NDArray[np.float32] = padded.transpose(2, 0, 1)[None].astype(np.float32) / 255
    return tensor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=MODELS / "shopbench-yolo.pt")
    parser.add_argument(
        "--data", type=Path, action="append", required=True, help="ShopBench dataset (repeat)"
    )
    parser.add_argument("--split", default="val", help="split whose videos calibrate")
    parser.add_argument("--imgsz", type=int, default=416)
    parser.add_argument("--frames", type=int, default=300, help="calibration frames")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="default: models/<name>")
    args = parser.parse_args(argv)
    if args.out is not None and not args.out.name.endswith("_openvino_model"):
        # ultralytics tells an OpenVINO model from other formats by this folder suffix.
        parser.error(f"--out must be a folder named *_openvino_model, not {args.out.name}")

    import nncf
    import openvino as ov

    started = time.perf_counter()
    name = f"{args.weights.stem}-int8-{args.imgsz}_openvino_model"
    out = args.out or MODELS / name
    frames = calibration_frames(args.data, args.split, args.frames, args.seed)
    print(f"{len(frames)} calibration frames from {len(args.data)} dataset(s)", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        exported = openvino_export(args.weights, args.imgsz, Path(scratch))
        xml = next(exported.glob("*.xml"))
        model = ov.Core().read_model(str(xml))
        quantized = nncf.quantize(
            model,
            nncf.Dataset(frames, lambda image: letterboxed(image, args.imgsz)),
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(frames),
            ignored_scope=nncf.IgnoredScope(types=["Multiply", "Subtract", "Sigmoid"]),
        )
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        shutil.copyfile(exported / "metadata.yaml", out / "metadata.yaml")
        ov.save_model(quantized, str(out / f"{args.weights.stem}.xml"))
    card = {
        "source": args.weights.name,
        "imgsz": args.imgsz,
        "quantization": "NNCF post-training INT8, preset MIXED, head decoding left in float",
        "calibration": {
            "datasets": [d.name for d in args.data],
            "split": args.split,
            "frames": len(frames),
            "seed": args.seed,
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
        "versions": {
            "python": platform.python_version(),
            "nncf": nncf.__version__,
            "openvino": ov.__version__,
        },
    }
    (out / "quantization.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
