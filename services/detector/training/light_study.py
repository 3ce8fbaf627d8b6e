"""How well the detector follows a shot's light (CROP_FOLLOW_LIGHT), against ShopBench's truth.

    python services/detector/training/light_study.py .vitrine/shopbench/seed-45-full [...]

Each validation video is decoded and looked at every `--every` seconds, as the sampler
would; shot boundaries come from the plan, so only the light estimate is judged. At each
look, `domain.lighting.ShotLight` estimates the light relative to the shot's first frame
and the plan says what it was (`scene.light_at`, relative to the shot's start); the error
is the largest per-channel |log(estimate / truth)|. Prints, per video and overall, the
median and 90th percentile error and the share of looks off by more than 10 %.
Validation splits only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import av
import numpy as np

from vitrine_detector.domain.lighting import LightingParams, ShotLight
from vitrine_shopbench.config import SCALES
from vitrine_shopbench.generate import plan_dataset
from vitrine_shopbench.scene import light_at


def video_errors(path: Path, plan: object, every: float) -> list[float]:
    shots = plan.shots  # type: ignore[attr-defined]
    light = ShotLight(LightingParams(enabled=True))
    errors: list[float] = []
    last_look, last_shot = -1.0, None
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            t = float(frame.time or 0.0)
            if t - last_look < every:
                continue
            last_look = t
            shot = next((s for s in shots if t < s.end), shots[-1])
            estimate = 1.0 / light.gains(frame.to_ndarray(format="bgr24"), shot is not last_shot)
            last_shot = shot
            gain, tint = light_at(shot, t)
            gain0, tint0 = light_at(shot, shot.start)
            truth = (gain * np.array(tint)) / (gain0 * np.array(tint0))
            errors.append(float(np.abs(np.log(estimate / truth[::-1])).max()))  # BGR
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", type=Path, nargs="+", help="ShopBench datasets (full)")
    parser.add_argument("--every", type=float, default=0.25, help="seconds between looks")
    args = parser.parse_args(argv)
    everything: list[float] = []
    for root in args.datasets:
        seed = json.loads((root / "manifest.json").read_text())["seed"]
        _, plans = plan_dataset(seed, SCALES["full"], ["val"])
        for plan in plans:
            path = root / "videos" / "val" / f"{plan.video_id}.{plan.format.container}"
            errors = np.array(video_errors(path, plan, args.every))
            everything += errors.tolist()
            print(
                f"{root.name} {plan.video_id}: median {np.median(errors):.3f},"
                f" p90 {np.quantile(errors, 0.9):.3f}, worst {errors.max():.3f}",
                flush=True,
            )
    errs = np.array(everything)
    print(
        f"{len(errs)} looks: median error {np.median(errs):.3f}, p90 {np.quantile(errs, 0.9):.3f},"
        f" off by more than 10 %: {(errs > 0.1).mean():.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
