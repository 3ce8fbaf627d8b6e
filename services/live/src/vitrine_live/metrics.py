"""Live's own Prometheus metrics (the shared ones come from the runtime)."""

from __future__ import annotations

from prometheus_client import Counter

# command: start, pin, unpin, end; result: changed, unchanged (an idempotent repeat) or the
# domain error code. Both are small fixed sets, so the series stay bounded.
SESSION_COMMANDS = Counter(
    "vitrine_live_session_commands_total", "Session commands by outcome", ["command", "result"]
)
