# The verbs a newcomer types. `make demo` runs the main job, `make test` proves it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := libs/schemas libs/runtime libs/stack libs/shopbench services/catalog services/checkout \
            services/commission services/live services/detector
PYPROJECTS := $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
STAMP := $(VENV)/.installed

.PHONY: help install up demo eval test test-fast lint contracts asyncapi lock clean deploy-tools deploy-check \
        bench-detector bench-matcher bench-ledger

help:  ## list the verbs
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

# Reinstall only when a pyproject or the pins change. torch comes first and pinned:
# pip then takes this machine's local wheel instead of resolving a newer release.
$(STAMP): $(PYPROJECTS) requirements/constraints.txt requirements/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt torch torchvision
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -r requirements/dev.txt \
		$(foreach p,$(PACKAGES),-e $(p))
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install every package (idempotent)

up: install  ## start the embedded platform (Kafka-protocol broker, Postgres, Qdrant, services); Ctrl-C stops it
	$(BIN)/python -m vitrine_stack up

demo: install  ## the main job: list a catalog, upload videos, see products tagged, buy, refund, print the ledger
	$(BIN)/python -m vitrine_stack demo

eval: install  ## ShopBench test split through detector and catalog: precision, recall, look-alikes, time to tag
	$(BIN)/python -m vitrine_stack eval --split test

test: install deploy-tools  ## every test: unit, contract, deploy checks, cross-service and slow ones
	$(BIN)/python tools/gen_contracts.py --check
	$(BIN)/python tools/gen_asyncapi.py --check
	$(BIN)/python tools/gen_k8s_topics.py --check
	$(BIN)/python -m pytest

test-fast: install deploy-tools  ## unit tests only (no embedded platform)
	$(BIN)/python -m pytest -m "not e2e and not slow"

lint: install  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(foreach p,$(PACKAGES),$(p)/src)

contracts: install  ## regenerate the committed JSON Schemas of every event
	$(BIN)/python tools/gen_contracts.py

asyncapi: install  ## regenerate docs/asyncapi/*.json from the services' FastStream apps
	$(BIN)/python tools/gen_asyncapi.py

lock: install  ## refresh requirements/constraints.txt from the current venv
	( echo "# Exact versions the project is tested with (pip install -c). Regenerate: make lock"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v ' @ ' ) > requirements/constraints.txt

bench-detector: install  ## detector speed on 720p H.264 vs real time, ultralytics tracking, pure decoding
	$(BIN)/python bench/detector/run.py

bench-matcher: install  ## matcher speed: crops embedded/s, search p50/p99, recall@10 on 100k products
	$(BIN)/python bench/matcher/run.py

bench-ledger: install  ## ledger posting rate vs raw consume; orders/s end to end with p50/p99
	nice -n 10 $(BIN)/python bench/ledger/run.py

# promtool and prometheus come from Debian's package; kubectl (kustomize v5) from the image.
deploy-tools:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }
	@command -v kubectl >/dev/null || { echo "kubectl is required (kubectl kustomize)"; exit 1; }

deploy-check: install deploy-tools  ## offline: kustomize + kubernetes-validate --strict, compose spec, promtool, hadolint
	$(BIN)/python tools/gen_k8s_topics.py --check
	$(BIN)/python -m pytest -q tests/test_deploy.py

clean:  ## remove the venv and the embedded platform's data
	rm -rf $(VENV) .vitrine
