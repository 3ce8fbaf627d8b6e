"""Ground truth of one video, from what the renderer saw in every frame.

- An object *is on screen* in a frame when at least `VISIBLE_MIN` of its silhouette is
  visible (not off frame, not hidden) and its visible box is at least `MIN_BOX_PX` on
  each side.
- Spans are half-open [start_ms, end_ms): start is the time of the first frame on screen,
  end the time just after the last one. Gaps shorter than `MERGE_GAP_MS` (an arm passing
  in front) do not split a span.
- A product's spans are the union of the spans of its appearances; `no_product_spans_ms`
  is the rest of the video (stretches of at least `NO_PRODUCT_MIN_MS`).
- Boxes are recorded every `box_stride` frames (about 10 per second), in pixels
  [x1, y1, x2, y2) of the visible region, for every object that has any pixel visible.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from vitrine_shopbench.render import Seen
from vitrine_shopbench.scene import VideoPlan

VISIBLE_MIN = 0.3
MIN_BOX_PX = 12
MERGE_GAP_MS = 300
NO_PRODUCT_MIN_MS = 500
SCHEMA = "shopbench.video/1"


def frame_ms(index: int, fps: int) -> int:
    return round(index * 1000 / fps)


def box_stride(fps: int) -> int:
    return max(1, round(fps / 10))


def on_screen(seen: Seen) -> bool:
    x1, y1, x2, y2 = seen.box
    return seen.visible >= VISIBLE_MIN and x2 - x1 >= MIN_BOX_PX and y2 - y1 >= MIN_BOX_PX


def spans_of(frames: list[int], fps: int) -> list[list[int]]:
    """Half-open millisecond spans covering the given frame indices."""
    spans: list[list[int]] = []
    for index in sorted(frames):
        start, end = frame_ms(index, fps), frame_ms(index + 1, fps)
        if spans and start - spans[-1][1] < MERGE_GAP_MS:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return spans


def union(spans: list[list[int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start - merged[-1][1] < MERGE_GAP_MS:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def complement(spans: list[list[int]], duration_ms: int) -> list[list[int]]:
    out: list[list[int]] = []
    cursor = 0
    for start, end in union(spans):
        if start - cursor >= NO_PRODUCT_MIN_MS:
            out.append([cursor, start])
        cursor = max(cursor, end)
    if duration_ms - cursor >= NO_PRODUCT_MIN_MS:
        out.append([cursor, duration_ms])
    return out


def build(plan: VideoPlan, seen_per_frame: list[list[Seen]], file: str) -> dict[str, Any]:
    fps = plan.format.fps
    duration_ms = frame_ms(plan.frame_count, fps)
    visible_frames: dict[int, list[int]] = defaultdict(list)
    for index, seen in enumerate(seen_per_frame):
        for s in seen:
            if on_screen(s):
                visible_frames[s.object_id].append(index)
    by_id = {a.object_id: a for a in plan.appearances}
    objects = []
    product_spans: dict[str, list[list[int]]] = defaultdict(list)
    for appearance in plan.appearances:
        frames = visible_frames.get(appearance.object_id, [])
        if not frames:
            continue  # planned, but never really on screen
        spans = spans_of(frames, fps)
        objects.append(
            {
                "object_id": appearance.object_id,
                "kind": appearance.kind,
                "product_id": appearance.product_id,
                "family": appearance.design.family,
                "spans_ms": spans,
            }
        )
        if appearance.product_id is not None:
            product_spans[appearance.product_id] += spans
    products = [
        {"product_id": pid, "spans_ms": union(spans)}
        for pid, spans in sorted(product_spans.items())
    ]
    stride = box_stride(fps)
    frames_out = []
    for index in range(0, len(seen_per_frame), stride):
        frames_out.append(
            {
                "index": index,
                "time_ms": frame_ms(index, fps),
                "boxes": [
                    {
                        "object_id": s.object_id,
                        "kind": by_id[s.object_id].kind,
                        "product_id": by_id[s.object_id].product_id,
                        "box": list(s.box),
                        "visible": s.visible,
                    }
                    for s in seen_per_frame[index]
                ],
            }
        )
    all_product_spans = [span for spans in product_spans.values() for span in spans]
    return {
        "schema": SCHEMA,
        "video_id": plan.video_id,
        "split": plan.split,
        "file": file,
        "container": plan.format.container,
        "codec": plan.format.codec,
        "width": plan.format.width,
        "height": plan.format.height,
        "fps": fps,
        "frame_count": plan.frame_count,
        "duration_ms": duration_ms,
        "rules": {
            "visible_min": VISIBLE_MIN,
            "min_box_px": MIN_BOX_PX,
            "merge_gap_ms": MERGE_GAP_MS,
            "box_stride_frames": stride,
            "box": "pixels [x1, y1, x2, y2) of the visible region",
            "spans": "half-open [start_ms, end_ms)",
        },
        "products": products,
        "objects": objects,
        "no_product_spans_ms": complement(all_product_spans, duration_ms),
        "shots": [
            {
                "start_ms": round(s.start * 1000),
                "end_ms": round(s.end * 1000),
                "background": f"{s.background.kind}:{s.background.photo}"
                + (f"+{s.background.surface}" if s.background.surface else ""),
            }
            for s in plan.shots
        ],
        "frames": frames_out,
    }
