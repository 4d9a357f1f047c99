# kerasserve: `make serve` starts a server, `make test` installs everything and runs every suite.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install install-python install-node install-system serve lint test test-python test-node bench

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

test-python:
	$(PYTHON) -m pytest

test-node:
	cd clients/miniprogram && PYTHON=$(PYTHON) npm test

test: install lint test-python test-node

bench: install-python
	$(PYTHON) -m bench
