"""Copy kept validation tracks with their crops relit by ShopBench's true light: the bound
any colour constancy could reach, for rescore.py and fit_verifier.py to judge.

    python services/catalog/training/relight_tracks.py opening OUT .vitrine/tracks-seed-45-val [...]

Modes (every crop divided, per channel, by the light it was filmed under (gain x tint,
`scene.light_at` at the crop's time) relative to):
- `absolute`: nothing: the crop as a neutral, unit light would show it;
- `opening`: the light at its shot's start: what CROP_FOLLOW_LIGHT estimates;
- `median`: the shot's median light (per channel, over 50 instants of the shot);
- `none`: not divided (the crops re-encoded alike: the control to compare with).

OUT gets one folder per input, with the same tracks.json and the studio features (crops
are embedded again by the reader). Validation splits only; a study, not a service path.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from vitrine_shopbench.config import SCALES
from vitrine_shopbench.generate import plan_dataset
from vitrine_shopbench.scene import light_at


def relight(folder: Path, out: Path, mode: str) -> None:
    kept = json.loads((folder / "tracks.json").read_text())
    seed = json.loads((Path(kept["dataset"]) / "manifest.json").read_text())["seed"]
    _, plans = plan_dataset(seed, SCALES["full"], ["val"])
    by_id = {p.video_id: p for p in plans}
    (out / "crops").mkdir(parents=True, exist_ok=True)
    for studio in folder.glob("studio-*.npz"):
        shutil.copy(studio, out / studio.name)
    (out / "tracks.json").write_text(json.dumps(kept))
    for video in kept["videos"]:
        shots = by_id[video["video_id"]].shots
        for track in video["detected"]:
            for crop in track["crops"]:
                t = crop["at_ms"] / 1000
                shot = next((s for s in shots if t < s.end), shots[-1])
                gain, tint = light_at(shot, t)
                light = gain * np.array(tint)
                if mode == "opening":
                    gain0, tint0 = light_at(shot, shot.start)
                    light = light / (gain0 * np.array(tint0))
                elif mode == "median":
                    instants = np.linspace(shot.start, shot.end, 50, endpoint=False)
                    lights = [g * np.array(tt) for g, tt in (light_at(shot, x) for x in instants)]
                    light = light / np.median(np.array(lights), axis=0)
                elif mode == "none":
                    light = np.ones(3)
                rgb = np.asarray(Image.open(folder / crop["file"]).convert("RGB"), np.float32)
                fixed = np.clip(rgb / light + 0.5, 0, 255).astype(np.uint8)
                Image.fromarray(fixed).save(out / crop["file"], quality=95)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["absolute", "opening", "median", "none"])
    parser.add_argument("out", type=Path)
    parser.add_argument("folders", type=Path, nargs="+", help="kept tracks of val splits")
    args = parser.parse_args(argv)
    for folder in args.folders:
        if folder.name.endswith("-test"):
            parser.error(f"{folder}: a test split; study matchers on validation splits only")
        relight(folder, args.out / folder.name, args.mode)
        print(folder.name, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
