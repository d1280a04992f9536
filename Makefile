# The two commands a newcomer needs: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHECKOV_VENV := .tools/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
PROMETHEUS_PORT ?= 9090
COMPILE := $(BIN)/pip-compile --quiet --strip-extras --no-header --allow-unsafe --no-emit-index-url --no-emit-find-links
PIP := $(BIN)/pip install --quiet --disable-pip-version-check
PIP_FAILED := { echo "setup: error: pip could not install the Python dependencies (see above): check the network or the package index, then run make again" >&2; exit 2; }

.PHONY: help setup tools readmes gate-query demo test test-kind bench bench-tenants soak lint lock clean

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup: $(STAMP) $(CHECKOV_STAMP) tools  ## Install the virtual environment, helm, Prometheus, Alertmanager and the README generator.

$(STAMP): requirements/dev.txt exporter/requirements.txt exporter/pyproject.toml pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { echo "setup: error: '$(PYTHON)' is not Python 3.11 or newer: install it, or run make PYTHON=python3.11" >&2; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "setup: error: cannot create $(VENV): install the venv module (Debian: apt-get install python3-venv)" >&2; exit 2; }
	@echo "Installing the pinned Python dependencies into $(VENV) ..."
	@$(PIP) -r requirements/dev.txt || $(PIP_FAILED)
	@$(PIP) --no-deps --no-build-isolation -e exporter -e . || $(PIP_FAILED)
	@touch $@

$(CHECKOV_STAMP): requirements/checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV) || { echo "setup: error: cannot create $(CHECKOV_VENV): install the venv module" >&2; exit 2; }
	@echo "Installing checkov into $(CHECKOV_VENV) ..."
	@$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/checkov.txt || $(PIP_FAILED)
	@touch $@

# helm, Prometheus, Alertmanager and the chart README generator (npm ci from .ci/readme-generator).
tools:
	@$(PYTHON) harness/local_stack/toolchain.py install

README_GENERATOR := $(or $(MODEL_MONITORING_TOOLS),.tools)/npm/node_modules/.bin/readme-generator
readmes:  ## Regenerate the parameters tables of charts/*/README.md from the values comments.
	@$(PYTHON) harness/local_stack/toolchain.py install-readme-generator >/dev/null
	@for chart in charts/model-exporter charts/model-monitoring; do \
	  out=$$($(README_GENERATOR) --values $$chart/values.yaml --readme $$chart/README.md 2>&1) || \
	    { echo "$$out" | grep -Ev '^(INFO|Skipping check|    at |Node\.js )' >&2; echo "readmes: error: $$chart/values.yaml: see above" >&2; exit 2; }; \
	  echo "$$chart/README.md"; \
	done

demo: setup  ## Run the chart's local profile on 127.0.0.1 until Ctrl-C.
	@$(BIN)/local-stack demo --prometheus-port $(PROMETHEUS_PORT)

# Most tests wait on Prometheus's scrape and rule intervals, not on the CPU: four workers on two
# cores take the suite from about 18 minutes to about 7. One file runs on one worker (its module
# fixtures are set up once); each worker starts its own local stacks on free ports.
TEST_WORKERS ?= 4
test: setup  ## Run the whole test suite; skips print their reasons.
	@$(BIN)/pytest --numprocesses $(TEST_WORKERS) --dist loadfile; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: error: no tests were collected" >&2; fi; exit $$rc

KIND_CLUSTER ?= model-monitoring
test-kind: setup  ## The kind tier: needs docker and kind (see README).
	@command -v kind >/dev/null && command -v docker >/dev/null || { echo "test-kind: error: needs docker and kind on PATH" >&2; exit 2; }
	@kind get clusters | grep -qx $(KIND_CLUSTER) || kind create cluster --name $(KIND_CLUSTER)
	docker build -t $$(.ci/image-ref) exporter/
	kind load docker-image $$(.ci/image-ref) --name $(KIND_CLUSTER)
	.tools/bin/helm repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update >/dev/null
	.tools/bin/helm dependency build charts/model-monitoring
	kind get kubeconfig --name $(KIND_CLUSTER) > .cache/kind-kubeconfig
	$(BIN)/pytest -m kind tests/e2e --kube-config .cache/kind-kubeconfig

MLSERVER_VENV := .tools/mlserver
MLSERVER_STAMP := $(MLSERVER_VENV)/.installed
$(MLSERVER_STAMP): bench/mlserver.txt
	@test -x $(MLSERVER_VENV)/bin/python || $(PYTHON) -m venv $(MLSERVER_VENV) || { echo "bench: error: cannot create $(MLSERVER_VENV): install the venv module" >&2; exit 2; }
	@echo "Installing MLServer (the benchmark's peer) into $(MLSERVER_VENV) ..."
	@$(MLSERVER_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/mlserver.txt || $(PIP_FAILED)
	@touch $@

bench: setup $(MLSERVER_STAMP)  ## Benchmarks (about 30 minutes; not part of make test); results in bench/results-*.md.
	@$(PYTHON) harness/local_stack/toolchain.py install-bench
	@$(PIP) -r bench/requirements.txt || $(PIP_FAILED)
	@$(BIN)/python bench/bench_exporter.py
	@$(BIN)/python bench/bench_router.py

bench-tenants: setup  ## What each user costs the shared stack, 1 to 20 users (8 minutes); bench/results-tenants.md.
	@$(BIN)/python bench/bench_tenants.py

soak: setup  ## Soak benchmark: 10 minutes of steady load on the local stack; bench/results-soak.md.
	@$(BIN)/python bench/bench_soak.py

lint: setup  ## ruff and mypy only (the test suite runs them too).
	@$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

gate-query: setup  ## Regenerate the chart's copy of the gate's PromQL verdict from modelmon.gate.promql.
	@$(BIN)/python -m modelmon.gate.promql charts/model-exporter

lock: setup  ## Re-pin requirements after editing a requirements .in file.
	@$(PIP) pip-tools==7.6.2
	@$(COMPILE) -o exporter/requirements.txt exporter/requirements.in
	@$(COMPILE) -o exporter/requirements-s3.txt exporter/requirements-s3.in
	@$(COMPILE) -o requirements/dev.txt requirements/dev.in
	@$(COMPILE) -o requirements/checkov.txt requirements/checkov.in
	@$(COMPILE) -o bench/requirements.txt bench/requirements.in
	@$(COMPILE) -o bench/mlserver.txt bench/mlserver.in

clean:  ## Remove the virtual environment, tools and caches.
	rm -rf $(VENV) .tools .cache .pytest_cache .mypy_cache .ruff_cache
