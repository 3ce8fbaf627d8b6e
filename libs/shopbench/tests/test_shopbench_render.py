"""Ground truth boxes sit where the geometry says the object is; hidden parts count."""

from __future__ import annotations

from dataclasses import replace

import pytest

from vitrine_shopbench.palette import COLOURS
from vitrine_shopbench.render import FrameRenderer
from vitrine_shopbench.scene import (
    Appearance,
    Background,
    CameraKey,
    Format,
    Key,
    LightKey,
    Occluder,
    Pose,
    Shot,
    VideoPlan,
)
from vitrine_shopbench.shapes import Design

BOX = Design(
    "box", (0.5, 1.0, 0.0, 0.0), COLOURS["red"], COLOURS["white"], "plain", COLOURS["white"], 0.5
)
FMT = Format("h264", 1280, 720, 25)


def _plan(x: float, zoom: float, occluders: tuple[Occluder, ...] = ()) -> VideoPlan:
    still = Pose(x, 0.5, 0.4, 0.0, 0.0)
    shot = Shot(
        start=0.0,
        end=5.0,
        background=Background("photo", "coffee", "", 0.5, False, (1.0, 1.0, 1.0), (0.5, 0.5), 0.0),
        camera=(CameraKey(0.0, 0.5, 0.5, zoom), CameraKey(5.0, 0.5, 0.5, zoom)),
        shake=0.0,
        shake_phase=(0.0, 0.0, 0.0, 0.0),
        lights=(LightKey(0.0, 1.0, (1.0, 1.0, 1.0)),),
        noise=0.0,
        light_direction=0.0,
    )
    product = Appearance(
        0, "product", "p0000", BOX, 0.0, 5.0, (Key(0.0, still), Key(5.0, still)), 1, 0.0
    )
    return VideoPlan("t", "test", FMT, 5.0, 23, (shot,), (product,), occluders, (4.0, 5.0))


def test_a_still_object_in_the_middle_is_boxed_where_it_stands() -> None:
    for zoom in (1.0, 1.5):
        _, seen = FrameRenderer(1, _plan(0.5, zoom)).frame(10)
        (only,) = seen
        x1, y1, x2, y2 = only.box
        height = 0.4 * zoom * 720  # the sprite's full height in pixels
        assert abs((x1 + x2) / 2 - 640) < 0.1 * height
        assert abs((y1 + y2) / 2 - 360) < 0.1 * height
        assert 0.6 * height < y2 - y1 <= height + 2
        assert only.visible > 0.99


# A pole standing in front of the middle of the frame for the whole clip.
POLE = Occluder(
    "pole",
    0.0,
    5.0,
    (Key(0.0, Pose(0.5, 0.5, 1.0, 0.0, 0.0)), Key(5.0, Pose(0.5, 0.5, 1.0, 0.0, 0.0))),
    (30, 30, 30),
    1.0,
)


def test_an_object_half_off_the_frame_is_half_visible() -> None:
    _, seen = FrameRenderer(1, _plan(0.0, 1.0)).frame(10)
    (only,) = seen
    assert only.box[0] == 0
    assert 0.3 < only.visible < 0.7


def test_an_occluder_in_front_hides_part_of_the_object() -> None:
    _, clear = FrameRenderer(1, _plan(0.5, 1.0)).frame(10)
    _, hidden = FrameRenderer(1, _plan(0.5, 1.0, (POLE,))).frame(10)
    assert clear[0].visible > 0.99
    assert 0.3 < hidden[0].visible < 0.95


def test_a_dataset_can_be_drawn_without_a_difficulty_and_nothing_else_changes() -> None:
    plan = _plan(0.5, 1.0, (POLE,))
    dim = replace(plan.shots[0], lights=(LightKey(0.0, 0.5, (1.0, 0.8, 1.1)),))
    plan = replace(plan, shots=(dim,))

    normal, seen = FrameRenderer(1, plan).frame(10)
    unlit, unlit_seen = FrameRenderer(1, plan, frozenset({"lighting"})).frame(10)
    # The light halved every channel (and tinted them): drawn without it, twice as bright.
    ratio = unlit.reshape(-1, 3).mean(axis=0) / normal.reshape(-1, 3).mean(axis=0)
    assert ratio == pytest.approx([2.0, 2.5, 1.82], rel=0.06)
    assert unlit_seen == seen  # same boxes, same visibility

    _, unhidden = FrameRenderer(1, plan, frozenset({"occluders"})).frame(10)
    assert seen[0].visible < 0.95
    assert unhidden[0].visible > 0.99

    with pytest.raises(ValueError, match="unknown difficulty fog"):
        FrameRenderer(1, plan, frozenset({"fog"}))
