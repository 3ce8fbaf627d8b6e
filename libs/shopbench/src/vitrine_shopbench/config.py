"""How big a dataset is: `small` for tests (seconds to make), `full` for training the
detector and for the evaluation (minutes on two cores)."""

from __future__ import annotations

from dataclasses import dataclass

from vitrine_shopbench.scene import Format

SPLITS: tuple[str, ...] = ("train", "val", "test")

# Photos kept out of training: validation and test each see backgrounds that the detector
# never saw, as real uploads will.
SPLIT_ONLY_PHOTOS: dict[str, tuple[str, ...]] = {
    "train": (),
    "val": ("ihc", "moon"),
    "test": ("motorcycle", "rocket"),
}

_LANDSCAPE_720 = (1280, 720)
_PORTRAIT_720 = (720, 1280)
_LANDSCAPE_1080 = (1920, 1080)
_PORTRAIT_1080 = (1080, 1920)


@dataclass(frozen=True, slots=True)
class Slot:
    """One video to make: its format and length."""

    format: Format
    duration: float


@dataclass(frozen=True, slots=True)
class Scale:
    name: str
    shops: int
    templates: int  # product shapes; each sells in 1-3 colourways
    images_per_product: int
    held_out_share: float  # products never shown in training videos
    videos: dict[str, tuple[Slot, ...]]
    yolo_interval: dict[str, float]  # seconds between frames exported for the detector


def _slots(
    sizes: list[tuple[int, int]], codecs: list[str], rates: list[int], durations: list[float]
) -> tuple[Slot, ...]:
    return tuple(
        Slot(
            Format(codecs[i % len(codecs)], *sizes[i % len(sizes)], rates[i % len(rates)]),
            duration,
        )
        for i, duration in enumerate(durations)
    )


SMALL = Scale(
    name="small",
    shops=2,
    templates=6,
    images_per_product=2,
    held_out_share=0.0,
    videos={
        # One 5 s video per split: both codecs and orientations. 720p only, to stay fast;
        # 1080p is proven by a slow test and used throughout `full`.
        "train": _slots([_LANDSCAPE_720], ["h264"], [24], [5.0]),
        "val": _slots([_PORTRAIT_720], ["vp9"], [25], [5.0]),
        "test": _slots([_LANDSCAPE_720], ["vp9"], [30], [5.0]),
    },
    yolo_interval={"train": 0.5, "val": 1.0, "test": 1.0},
)

FULL = Scale(
    name="full",
    shops=6,
    templates=30,
    images_per_product=4,
    held_out_share=0.2,
    videos={
        # Training clips are short and many: variety per second of rendering.
        "train": _slots(
            [
                _LANDSCAPE_720,
                _PORTRAIT_720,
                _LANDSCAPE_720,
                _LANDSCAPE_1080,
                _PORTRAIT_720,
                _PORTRAIT_1080,
            ],
            ["h264", "vp9", "vp9"],
            [30, 25, 24, 30],
            [5.0 + (k * 7) % 11 for k in range(28)],
        ),
        "val": _slots(
            [_LANDSCAPE_720, _PORTRAIT_1080, _LANDSCAPE_1080, _PORTRAIT_720],
            ["h264", "vp9", "h264"],
            [30, 25, 24],
            [5.0, 8.0, 12.0, 15.0, 20.0, 25.0, 30.0, 40.0],
        ),
        # Every format and the whole range of lengths, 5 to 60 s.
        "test": _slots(
            [_LANDSCAPE_720, _PORTRAIT_720, _LANDSCAPE_1080, _LANDSCAPE_720, _PORTRAIT_1080],
            ["h264", "vp9", "h264"],
            [30, 25, 24, 30],
            [5.0, 60.0, 8.0, 12.0, 15.0, 20.0, 10.0, 25.0, 30.0, 45.0, 6.0, 18.0],
        ),
    },
    yolo_interval={"train": 0.25, "val": 0.5, "test": 0.5},
)

SCALES: dict[str, Scale] = {"small": SMALL, "full": FULL}
