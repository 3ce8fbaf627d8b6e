"""How `eval --calibrate` picks the matcher's threshold and margin from pooled counts."""

from __future__ import annotations

import pytest

from vitrine_stack.evaluation import MARGINS, THRESHOLDS, choose_calibration

ON_SCREEN = 50


def grid(counts: dict[tuple[float, float], tuple[int, int]]) -> dict[str, list[int]]:
    """A calibration grid: (right, tagged) per setting, 0 tags wherever not given."""
    return {
        f"{t:.2f}/{m:.2f}": [*counts.get((t, m), (0, 0)), ON_SCREEN]
        for t in THRESHOLDS
        for m in MARGINS
    }


def cliff(margin: float, edge: float) -> dict[tuple[float, float], tuple[int, int]]:
    """Recall falls as the threshold rises; below `edge` three distractors get tagged."""
    counts = {}
    for k, threshold in enumerate(THRESHOLDS):
        right = 40 - k
        counts[(threshold, margin)] = (right, right + (1 if threshold >= edge else 4))
    return counts


def test_the_setting_just_at_a_cliff_is_passed_over_for_one_a_step_stricter() -> None:
    chosen = choose_calibration([grid(cliff(0.1, edge=0.40))])
    assert chosen is not None
    # 0.40 reaches the target (30/31) but 0.38 does not (31/35): 0.42 is the first
    # setting whose looser neighbour also holds.
    assert (chosen.threshold, chosen.margin) == (0.42, 0.1)
    assert chosen.precision == pytest.approx(29 / 30)
    assert chosen.recall == pytest.approx(29 / ON_SCREEN)


def test_counts_of_several_splits_are_pooled() -> None:
    # Alone, the second split's one false tag at 0.30 is 1 in 2; pooled it is 1 in 22.
    first = grid({(t, 0.0): (20, 20) for t in THRESHOLDS})
    second = grid({(t, 0.0): ((1, 2) if t <= 0.30 else (0, 0)) for t in THRESHOLDS})
    chosen = choose_calibration([first, second])
    assert chosen is not None
    # Every threshold up to 0.30 keeps that right tag; the strictest of them wins the tie.
    assert chosen.threshold == 0.30
    assert chosen.precision == pytest.approx(21 / 22)
    assert chosen.recall == pytest.approx(21 / (2 * ON_SCREEN))
    alone = choose_calibration([second])
    assert alone is not None
    assert alone.threshold > 0.30


def test_ties_go_to_the_stricter_threshold_then_the_wider_margin() -> None:
    counts = {(t, m): (30, 30) for t in THRESHOLDS for m in MARGINS}
    chosen = choose_calibration([grid(counts)])
    assert chosen is not None
    assert (chosen.threshold, chosen.margin) == (THRESHOLDS[-1], MARGINS[-1])


def test_nothing_is_chosen_when_no_setting_reaches_the_target() -> None:
    counts = {(t, m): (10, 20) for t in THRESHOLDS for m in MARGINS}
    assert choose_calibration([grid(counts)]) is None
