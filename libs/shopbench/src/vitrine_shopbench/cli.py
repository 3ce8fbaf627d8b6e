"""`python -m vitrine_shopbench generate --seed 7 --out DIR [--scale small|full]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vitrine_shopbench.config import SCALES, SPLITS
from vitrine_shopbench.generate import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitrine_shopbench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("generate", help="make a dataset from a seed")
    make.add_argument("--seed", type=int, required=True)
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--scale", choices=sorted(SCALES), default="small")
    make.add_argument(
        "--splits",
        default=",".join(SPLITS),
        help="comma-separated subset of train,val,test; a split is the same whichever others"
        " are made with it",
    )
    make.add_argument("--jobs", type=int, default=1, help="videos rendered in parallel")
    make.add_argument("--no-yolo", action="store_true", help="skip the detector image export")
    make.add_argument(
        "--without",
        default="",
        help="comma-separated difficulties left out of every frame (lighting, blur,"
        " occluders): the same videos otherwise, to measure what each costs; never quote"
        " figures made on such a dataset",
    )
    make.add_argument(
        "--videos", help="comma-separated video ids (e.g. test-0003): make only these videos"
    )
    args = parser.parse_args(argv)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        parser.error(f"unknown split(s): {', '.join(unknown)}")
    videos = [v.strip() for v in args.videos.split(",") if v.strip()] if args.videos else None
    try:
        generate(
            args.seed,
            args.out,
            args.scale,
            splits,
            jobs=args.jobs,
            yolo=not args.no_yolo,
            videos=videos,
            without=[w.strip() for w in args.without.split(",") if w.strip()],
        )
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
