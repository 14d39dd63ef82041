# lanelab: `make demo` runs every notebook against the embedded simulator; `make test` runs the tests.
# Each target sets up what it needs itself (a .venv with the packages from PyPI) when it is missing or stale.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lanelab-installed
TESTSTAMP := $(VENV)/.lanelab-test-installed
LINTSTAMP := $(VENV)/.lanelab-lint-installed
CHROMIUM  := /usr/bin/chromium
# Keep compiled bytecode (and pytest's rewritten test modules) between runs, even where the environment turns it off:
# every test process, notebook kernel and xdist worker would otherwise compile the kit and its tests from source.
export PYTHONDONTWRITEBYTECODE :=

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-fast lab audit lint bench sync profiles clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# The real-browser test needs Debian's chromium (Playwright's own browser download does not work here) and the
# browser extra (Playwright's Python package, JupyterLab).
$(TESTSTAMP): $(STAMP)
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	$(BIN)/python -m pip install --quiet -e '.[test,browser]'
	@touch $(TESTSTAMP)

setup: $(STAMP) ## create .venv and install the kit with its test tools

demo: $(STAMP) ## run every notebook headless against the simulator; results and reports land in reports/demo/
	$(BIN)/python -m lanelab demo

# Tests run in two processes (pytest-xdist): the suite is mostly waiting on loopback servers, notebooks and a browser.
# `make test PYTEST_PARALLEL=` runs them in one process.
PYTEST_PARALLEL ?= -n 2
# On CI (CI=true) the offline rehearsal of live mode must run, not skip: CI runs as root, where namespaces work.
test: $(TESTSTAMP) ## run the test suite (unit, simulator, notebooks headless, the live-mode rehearsal, a real browser)
	LANELAB_REQUIRE_REHEARSAL=$${CI:+1} $(BIN)/python -m pytest -q $(PYTEST_PARALLEL)

# The developer's loop: every test but the real browser, the rehearsal and those marked slow (they start processes of
# the kit, Jupyter or a namespace, build whole reports, wait out timeouts, or are the rest of a family of cases of
# which the loop keeps a representative share). Property tests try at most 20 examples here, and each test file goes
# to one worker whole (tests/fast_loop.py). `make test` runs everything, with every example.
test-fast: $(STAMP) ## the fast loop: every test not marked slow, browser or rehearsal (about half a minute on two cores)
	$(BIN)/python -m pytest -q $(PYTEST_PARALLEL) --dist loadfile -m "not browser and not slow and not rehearsal"

lab: $(TESTSTAMP) ## open the notebooks in JupyterLab (sim: simulator running; prints the URL with its token; Ctrl-C stops)
	$(BIN)/python -m lanelab lab

audit: $(STAMP) ## run the hardening tests and print their figures (canary hits, fuzz cases, faults, resume)
	rm -rf reports/audit
	$(BIN)/python -m pytest -q -m hardening
	$(BIN)/python -m lanelab audit

$(LINTSTAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	@touch $(LINTSTAMP)

lint: $(LINTSTAMP) ## static checks: ruff (lib, tests, bench) and mypy (lib; settings in pyproject.toml)
	$(BIN)/ruff check lib tests bench
	$(BIN)/mypy

bench: $(STAMP) ## print the benchmark figures (ratios measured in one run)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

sync: $(STAMP) ## regenerate notebooks/*.ipynb from their reviewed py:percent twins, without outputs
	$(BIN)/python -c "from lanelab.devtools.notebook_exec import sync_all; [print(p) for p in sync_all()]"

# Not part of `make test` or CI: installs the real clients from their registries into CLIENTS_DIR (outside the repo)
# and runs each once in a private network namespace (needs root, unshare, ip). PROFILES_ARGS passes options, e.g.
# PROFILES_ARGS="--clients pi,hermes --keep-going".
CLIENTS_DIR ?= /work/clients
profiles: $(STAMP) ## capture real clients as they send today into data/profiles and data/captures
	$(BIN)/python tools/capture_profiles.py --clients-dir $(CLIENTS_DIR) $(PROFILES_ARGS)

clean: ## remove what the demo and the tests generated (keeps your runs in reports/runs/ and .venv)
	rm -rf reports/demo reports/audit reports/screenshots
	@touch reports/.gitkeep
