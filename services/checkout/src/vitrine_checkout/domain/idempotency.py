"""Fingerprints of write requests, to tell a retry from a different request under one key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def request_fingerprint(operation: str, request: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the request (keys sorted, no whitespace).

    Hashing the validated request, not the raw bytes, makes a retry that only reorders keys
    or spacing count as the same request.
    """
    canonical = json.dumps(
        {"operation": operation, "request": request},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
