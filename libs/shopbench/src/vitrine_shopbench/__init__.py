"""ShopBench: a seeded, synthetic but hard catalog and video set, with ground truth, for
making every video shoppable (detection, tracking and catalog matching)."""

from vitrine_shopbench.generate import generate, plan_dataset, render_video

__all__ = ["generate", "plan_dataset", "render_video"]
