"""Train the detector's YOLO from scratch on ShopBench, offline, on the CPU.

    python -m vitrine_shopbench generate --seed 7 --out /tmp/shopbench/full-7 --scale full --jobs 2
    nice -n 10 python services/detector/training/train.py --data /tmp/shopbench/full-7

No weights exist to start from here, so the network is built from ultralytics' model
yaml and trained on the train split, validated on the validation split (model selection:
best epoch by validation fitness). The test split is never read. `--data` may be given
several times: the train splits of all are used (other seeds are other catalogs, so more
variety for a class-agnostic detector), the validation split of the first.
`--init` continues from weights this script made before (a longer run in stages);
`--hours` caps the wall time, ultralytics then fits the schedule to it.

The detector is class-agnostic: one class, "object", for every salient thing in a frame
(products and distractors alike). Which objects are for sale is the catalog matcher's call,
so a product added to the catalog tomorrow is found in yesterday's videos without
retraining.

Nothing is downloaded: ultralytics runs with YOLO_OFFLINE=1 (no connectivity probe, no
analytics), YOLO_AUTOINSTALL=false (no pip at run time), amp=False (the AMP check would
fetch yolo11n.pt), plots=False, and a config folder of its own holding a local font as
Arial.ttf (dataset checks otherwise try to download that font).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent / "models"


def offline_ultralytics(workdir: Path) -> None:
    """Point ultralytics at a private config folder and switch off everything that would
    reach the network. Must run before ultralytics is imported."""
    config = workdir / "ultralytics-config"
    config.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_CONFIG_DIR"] = str(config)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ.setdefault("YOLO_VERBOSE", "true")
    font = config / "Arial.ttf"
    if not font.exists():
        import matplotlib

        # Any TrueType font will do: it is only used to draw labels on plots.
        dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        shutil.copyfile(dejavu, font)


def threshold_table(model: Any, yolo_root: Path, imgsz: int) -> list[dict[str, float]]:
    """Precision and recall on the validation images at several confidence thresholds
    (a detection is right when it overlaps an unmatched labelled box at IoU >= 0.5)."""
    import numpy as np
    from PIL import Image

    images = sorted((yolo_root / "images" / "val").glob("*.jpg"))
    scored: list[tuple[float, bool]] = []
    labelled = 0
    for start in range(0, len(images), 16):
        chunk = images[start : start + 16]
        results = model.predict(
            [str(p) for p in chunk], imgsz=imgsz, conf=0.01, device="cpu", verbose=False
        )
        for path, result in zip(chunk, results, strict=True):
            w, h = Image.open(path).size
            truth = []
            label = yolo_root / "labels" / "val" / f"{path.stem}.txt"
            for line in label.read_text().splitlines():
                _, cx, cy, bw, bh = (float(v) for v in line.split())
                truth.append(
                    ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
                )
            labelled += len(truth)
            taken = [False] * len(truth)
            boxes = result.boxes.xyxy.numpy()
            confs = result.boxes.conf.numpy()
            for k in np.argsort(-confs):
                best, best_iou = -1, 0.5
                for j, t in enumerate(truth):
                    iou = _iou(boxes[k], t)
                    if not taken[j] and iou >= best_iou:
                        best, best_iou = j, iou
                if best >= 0:
                    taken[best] = True
                scored.append((float(confs[k]), best >= 0))
    table = []
    for threshold in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7):
        kept = [hit for conf, hit in scored if conf >= threshold]
        hits = sum(kept)
        table.append(
            {
                "conf": threshold,
                "precision": round(hits / len(kept), 4) if kept else 1.0,
                "recall": round(hits / labelled, 4) if labelled else 0.0,
            }
        )
    return table


def _iou(a: Any, b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _epochs_run(results: Path) -> int:
    """Epochs actually trained (a time cap makes ultralytics fit fewer than asked)."""
    return max(0, len(results.read_text().splitlines()) - 1) if results.exists() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        action="append",
        help="a ShopBench dataset folder (repeatable; validation comes from the first)",
    )
    parser.add_argument("--model", help="architecture yaml (default yolov8n.yaml); not with --init")
    parser.add_argument(
        "--init", type=Path, help="start from these weights (made by this script) instead"
    )
    parser.add_argument("--hours", type=float, help="train for at most this long")
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument(
        "--close-mosaic", type=int, default=4, help="last epochs trained without mosaic"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vitrine-detector-training"
    )
    parser.add_argument("--out", type=Path, default=MODELS)
    args = parser.parse_args(argv)
    if args.init and args.model:
        parser.error("--init continues weights with their own architecture: no --model")
    # What to start from, and the architecture's name: the yaml's, or the one the --init
    # weights were named after.
    model_yaml: str | None = None
    if args.init:
        start, architecture = str(args.init), args.init.stem.removeprefix("shopbench-")
    else:
        model_yaml = args.model or "yolov8n.yaml"
        start, architecture = model_yaml, Path(model_yaml).stem

    roots = [d.resolve() for d in args.data]
    manifests = [json.loads((root / "manifest.json").read_text()) for root in roots]
    for root in roots:
        assert (root / "yolo" / "data.yaml").exists(), (
            f"no detector export in {root}: generate without --no-yolo"
        )
    # Train and validate only: a data file without the test split, so nothing reads it.
    train_dirs = [
        str(root / "yolo" / "images" / "train")
        for root, m in zip(roots, manifests, strict=True)
        if "train" in m["splits"]
    ]
    yolo_root = roots[0] / "yolo"
    assert (yolo_root / "images" / "val").is_dir(), f"no validation split in {roots[0]}"
    train_yaml = args.workdir / "data-train-val.yaml"
    args.workdir.mkdir(parents=True, exist_ok=True)
    train_yaml.write_text(
        json.dumps(
            {
                "path": str(yolo_root),
                "train": train_dirs,
                "val": "images/val",
                "names": {0: "object"},
            }
        )
        + "\n"
    )

    offline_ultralytics(args.workdir)
    import torch
    from ultralytics import __version__ as ultralytics_version
    from ultralytics.models import YOLO

    torch.set_num_threads(args.threads)
    model = YOLO(start)
    started = time.perf_counter()
    budget = {"time": args.hours} if args.hours else {}
    model.train(
        data=str(train_yaml),
        epochs=args.epochs,
        **budget,
        imgsz=args.imgsz,
        batch=args.batch,
        device="cpu",
        workers=0,
        amp=False,
        plots=False,
        # Resized images saved once as .npy beside the JPEGs: no decoding every epoch, and
        # unlike cache="ram", deterministic in ultralytics.
        cache="disk",
        close_mosaic=args.close_mosaic,
        seed=args.seed,
        deterministic=True,
        project=str(args.workdir / "runs"),
        name="train",
        exist_ok=True,
        verbose=True,
    )
    train_seconds = time.perf_counter() - started
    best = args.workdir / "runs" / "train" / "weights" / "best.pt"

    # Validation metrics of the selected weights, measured again at the chosen size.
    selected = YOLO(str(best))
    val = selected.val(
        data=str(train_yaml),
        split="val",
        imgsz=args.imgsz,
        batch=args.batch,
        device="cpu",
        workers=0,
        plots=False,
        project=str(args.workdir / "runs"),
        name="val",
        exist_ok=True,
    )
    metrics = {
        "map50": round(float(val.box.map50), 4),
        "map50_95": round(float(val.box.map), 4),
        "precision": round(float(val.box.mp), 4),
        "recall": round(float(val.box.mr), 4),
    }

    thresholds = threshold_table(selected, yolo_root, args.imgsz)

    args.out.mkdir(parents=True, exist_ok=True)
    # Named after the architecture (shopbench-yolov8n for the shipped one), so that a run
    # of another one (--model yolo26n.yaml, a narrower yaml of one's own, or --init
    # weights of such a run) cannot overwrite it.
    name = f"shopbench-{architecture}"
    weights = args.out / f"{name}.pt"
    shutil.copyfile(best, weights)
    record: dict[str, Any] = {
        "weights": weights.name,
        "model": model_yaml,
        "architecture": architecture,
        "init": args.init.name if args.init else None,
        "classes": ["object"],
        "imgsz": args.imgsz,
        "epochs": _epochs_run(args.workdir / "runs" / "train" / "results.csv"),
        "hours_cap": args.hours,
        "batch": args.batch,
        "close_mosaic": args.close_mosaic,
        "seed": args.seed,
        "threads": args.threads,
        "train_wall_seconds": round(train_seconds, 1),
        "data": [
            {
                "generator": m["generator"],
                "seed": m["seed"],
                "scale": m["scale"],
                "videos": {s: len(v) for s, v in m["splits"].items() if s != "test"},
                "images": {s: n for s, n in m["yolo"]["images"].items() if s != "test"},
                "boxes": {s: n for s, n in m["yolo"]["boxes"].items() if s != "test"},
            }
            for m in manifests
        ],
        "validation": metrics,
        "validation_by_confidence": thresholds,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "ultralytics": ultralytics_version,
        },
        "machine": {"cpus": os.cpu_count(), "processor": platform.machine()},
    }
    (args.out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
