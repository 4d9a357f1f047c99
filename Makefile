# kerasserve: `make serve` starts a server, `make test` installs everything and runs every suite,
# `make check` (lint, unit tests, the README's server on the default path) is the quick loop.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install install-python install-node install-system serve lint check test test-python test-node bench

install: install-python install-node install-system

install-python:
	$(PIP) install -q -e ".[server,openvino,dev,bench]"

install-node:
	cd clients/miniprogram && npm ci --no-audit --no-fund --loglevel=error

install-system:
	bash scripts/install-system-deps.sh

serve: install-python
	$(PYTHON) -m kerasserve.service serve

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

# Within 3 minutes once the OpenVINO export is cached (~/.cache/kerasserve/openvino): the smoke
# is the README's bare `kerasserve serve` classifying a photo.
check: lint
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/unit
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e/test_readme_serve.py

# Two processes share the cores (whole files each, so a module's fixtures are built once); the
# tests that measure time, throughput or worker supervision then run alone.
PYTEST_WORKERS ?= 2
test-python:
	$(PYTHON) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not serial"
	$(PYTHON) -m pytest -m serial

test-node:
	cd clients/miniprogram && PYTHON=$(PYTHON) npm test

test: install lint test-python test-node

bench: install-python
	$(PYTHON) -m bench
