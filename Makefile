# TITAN: the two commands of the README.
#   make demo   set up (first time only) and run the main job on the bundled data
#   make test   set up (first time only) and pass every check CI runs
# Set-up is incremental: the venv is rebuilt only when requirements.lock (or .exclude),
# pyproject.toml or the pinned plotly.js bundles change, so a second run starts in a second
# or two. Set-up compiles the bytecode of the installed packages (about 16 s on 2 cores) and
# starts compiling the research code's numba kernels in the background (about 35 s of CPU;
# a process that needs a kernel first waits for it, see titan_lib/compile_once.py), so the
# many processes a run starts at once do not each compile the same modules and kernels.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.titan-installed
UV_VERSION := 0.13.9
SITE_PACKAGES := $(VENV)/lib/python3.11/site-packages
# Left without bytecode (compiled on first import, if ever): the packages' own test suites and
# the tools that run compiled or not at all here: about a third of the installed modules. A name
# missing from this list only costs set-up time.
NO_BYTECODE := /(tests?|testing|_tests)/|/site-packages/(pip|setuptools|mypy|mypyc|matplotlib|mpl_toolkits|fontTools|prompt_toolkit|graphql|jedi|parso|docker)/
export NUMBA_CACHE_DIR := $(CURDIR)/.cache/numba
export TITAN_ARTIFACTS ?= $(CURDIR)/artifacts
export PYTHONDONTWRITEBYTECODE :=

.PHONY: help setup demo test lint chromium

help:
	@echo "make demo   run the main job (research pipeline) on the bundled data"
	@echo "make test   run every check: ruff, mypy, pytest (unit, notebooks, lambdas, browser)"

$(STAMP): requirements.lock requirements.exclude pyproject.toml titan_lib/dashboards/plotly_bundle.py
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "TITAN needs Python 3.11, found " + sys.version.split()[0]'
	@echo "==> creating $(VENV) and installing the pinned stack (requirements.lock)"
	@test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	@test -x $(BIN)/uv || $(PYTHON) -m pip --python $(BIN)/python install --quiet --disable-pip-version-check "uv==$(UV_VERSION)" \
		|| { $(BIN)/python -m ensurepip --default-pip >/dev/null && $(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; }
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock --excludes requirements.exclude
	$(BIN)/uv pip uninstall --quiet --python $(BIN)/python -r requirements.exclude  # from an older venv
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@mkdir -p $(NUMBA_CACHE_DIR)
	$(BIN)/python -m titan_lib.runner.precompile > $(NUMBA_CACHE_DIR)/precompile.log 2>&1 &
	$(BIN)/python -m compileall -q -j 0 -x '$(NO_BYTECODE)' $(SITE_PACKAGES)
	$(BIN)/python -m ipykernel install --sys-prefix --name titan --display-name "TITAN (Python 3.11)" >/dev/null
	$(BIN)/python -m titan_lib.dashboards.plotly_bundle
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/titan pipeline parameters/pipelines/demo.yaml

chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "==> installing Debian chromium for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "The browser tests need Debian's chromium at /usr/bin/chromium."; \
		echo "Install it as root:  sudo apt-get install -y chromium   then run make test again."; \
		exit 1; \
	fi

PYTEST_PARALLEL := --numprocesses=auto --maxprocesses=4 --dist=loadgroup --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# mypy runs beside pytest (it needs a core for about 20-50 s; pytest's workers start their
# services meanwhile); both must pass, and mypy's report is printed after the tests.
test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@mkdir -p .cache
	@$(BIN)/mypy > .cache/mypy.out 2>&1 & mypy_pid=$$!; \
	status=0; $(BIN)/pytest $(PYTEST_PARALLEL) || status=$$?; \
	echo "==> mypy"; if ! wait $$mypy_pid; then status=1; fi; cat .cache/mypy.out; \
	exit $$status
