"""The matcher's verifier as a file: JSON written by ``training/fit_verifier.py``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from vitrine_catalog.domain.matching import MatchVerifier

DEFAULT_VERIFIER = Path(__file__).resolve().parents[3] / "models" / "match-verifier.json"


def load_verifier(path: str | os.PathLike[str]) -> MatchVerifier:
    """The verifier in ``path``; a missing or malformed file names the setting to fix."""
    try:
        data = json.loads(Path(path).read_text())
        return MatchVerifier.from_dict(data)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"matcher verifier not found at {path} (MATCH_VERIFIER)") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"matcher verifier {path} is not valid (MATCH_VERIFIER): {exc}") from exc
