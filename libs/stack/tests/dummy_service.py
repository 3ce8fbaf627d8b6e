"""A stand-in service for the supervisor tests: HTTP on $HTTP_PORT, /readyz answers 200.

DUMMY_MODE changes its behaviour: "exit" dies before listening, "ignore-term" ignores
SIGTERM, "grandchild" forks a sleeping grandchild into its process group, "slow" waits
DUMMY_DELAY seconds before answering /readyz with 200.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

MODE = os.environ.get("DUMMY_MODE", "")
STARTED = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/readyz":
            ready = MODE != "slow" or time.monotonic() - STARTED > float(
                os.environ.get("DUMMY_DELAY", "1")
            )
            self._send(200 if ready else 503, {"ready": ready})
        elif self.path == "/env":
            self._send(200, dict(os.environ))
        elif self.path == "/pid":
            self._send(200, {"pid": os.getpid(), "children": CHILDREN})
        else:
            self._send(404, {})

    def _send(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        print("request", format % args, flush=True)


CHILDREN: list[int] = []


def main() -> None:
    print(f"dummy {os.environ.get('SERVICE_NAME')} starting, mode={MODE!r}", flush=True)
    if MODE == "exit":
        print("dummy: failing on purpose", file=sys.stderr, flush=True)
        sys.exit(3)
    if MODE == "ignore-term":
        signal.signal(signal.SIGTERM, lambda *_: print("dummy: ignoring SIGTERM", flush=True))
    if MODE == "grandchild":
        sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
        CHILDREN.append(subprocess.Popen(sleeper).pid)
    server = HTTPServer(("127.0.0.1", int(os.environ["HTTP_PORT"])), Handler)
    print(f"dummy listening on {server.server_address}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
