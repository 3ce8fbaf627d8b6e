"""Stack matcher heads trained by `train_matcher.py` into one ensemble head.

    python services/catalog/training/stack_heads.py --out services/catalog/models \\
        run-a/matcher-head.npz run-b/matcher-head.npz ...

The ensemble's vector is the members' unit vectors side by side, scaled so that a dot
product is the mean of their cosines (`MatcherHead.members`). Its card lists every
member's own card (data, hyperparameters, validation), so the file says how each part was
made. Writes matcher-head.npz and matcher-head.json into `--out`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vitrine_catalog.adapters.embedder import MatcherHead

HEAD_NAME = "matcher-head"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("members", type=Path, nargs="+", help="single heads of one size")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--note", default="", help="why these members (kept in the card)")
    args = parser.parse_args(argv)

    heads = [MatcherHead.load(path) for path in args.members]
    cards = [json.loads(head.card) for head in heads]
    card = {
        "name": HEAD_NAME,
        "maps": f"{cards[0].get('maps', '')}, {len(heads)} members side by side",
        "members": [{"file": head.name, **c} for head, c in zip(heads, cards, strict=True)],
        "note": args.note,
    }
    ensemble = MatcherHead.stacked(heads, HEAD_NAME, json.dumps(card))
    args.out.mkdir(parents=True, exist_ok=True)
    ensemble.save(args.out / f"{HEAD_NAME}.npz")
    (args.out / f"{HEAD_NAME}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"{len(heads)} members, {ensemble.dimension} values: {args.out / HEAD_NAME}.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
