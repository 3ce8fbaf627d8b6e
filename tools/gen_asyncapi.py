"""Generate docs/asyncapi/<service>.json from each service's FastStream app.

The document lists what a service consumes (its consumer group's topics) and what it
publishes, with the envelope schema of each event. `--check` fails when the committed
documents are stale, so subscribers outside this repo always read the truth.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from fastapi import FastAPI

from vitrine_runtime.service import ServiceRuntime

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "asyncapi"
SERVICES = ("catalog", "checkout", "commission", "live", "detector")


def document(service: str) -> str:
    app: FastAPI = importlib.import_module(f"vitrine_{service}.app").create_app()
    runtime: ServiceRuntime = app.state.runtime
    spec = runtime.asyncapi()
    # The broker address is deployment detail, not contract.
    for server in spec.get("servers", {}).values():
        server["host"] = "kafka:9092"
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a document is stale")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    stale = []
    for service in SERVICES:
        path = OUT / f"{service}.json"
        text = document(service)
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("stale AsyncAPI documents (run `make asyncapi`):", *stale, sep="\n  ")
        return 1
    print("AsyncAPI documents are up to date" if args.check else "done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
