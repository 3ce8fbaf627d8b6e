"""Shared by the catalog's tests: the offline training scripts, loaded as modules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TRAINING = Path(__file__).resolve().parents[1] / "training"


def training_script(name: str) -> ModuleType:
    """``training/<name>.py`` as a module (the scripts import their neighbours by name)."""
    if str(TRAINING) not in sys.path:
        sys.path.insert(0, str(TRAINING))
    spec = importlib.util.spec_from_file_location(name, TRAINING / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
