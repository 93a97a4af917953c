# Two entry points: `make demo` and `make test`. Both create .venv when it is
# missing and (re)install only when pyproject.toml changed, so a second run is fast.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-base docs screenshots bench soak setup setup-test chromium schema clean help

help:
	@echo "make demo   - set up .venv and run the bundled example pipelines"
	@echo "make test   - set up everything the tests need and run the whole suite"
	@echo "make test-base - the suite with runlog alone (no extras): their tests skip, saying why"
	@echo "make docs   - build the docs site into site/ (mkdocs build --strict)"
	@echo "make screenshots - retake the web UI's pictures in docs/images/ from the demo's runs"
	@echo "make bench  - run the benchmarks in bench/ (ARGS=--quick for a short run)"
	@echo "make soak   - the long crash/fuzz variants of the reliability suite"

# pip -qq: only real errors reach the screen (no notices, no build-backend chatter).
PIP := $(BIN)/python -m pip install -qq

# The distribution was called runlog before it became runlog-store: a .venv made then,
# and the checkout's runlog.egg-info, would keep both names (and register the Datasette
# plugin twice), so the old one goes first.
DROP_OLD_NAME := { $(BIN)/python -m pip uninstall -qq -y runlog 2>/dev/null; rm -rf runlog.egg-info; } || true

$(BIN)/python:
	@echo "creating $(VENV) (once)"
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip

$(VENV)/.core-installed: pyproject.toml | $(BIN)/python
	@echo "installing runlog and its extras into $(VENV)"
	@$(DROP_OLD_NAME)
	@$(PIP) -e '.[all]'
	@touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	@echo "installing runlog and what the tests need into $(VENV)"
	@$(DROP_OLD_NAME)
	@$(PIP) -e '.[test]'
	@touch $@ $(VENV)/.core-installed $(VENV)/.docs-installed

$(VENV)/.docs-installed: pyproject.toml | $(BIN)/python
	@echo "installing runlog and the docs tools into $(VENV)"
	@$(DROP_OLD_NAME)
	@$(PIP) -e '.[docs]'
	@touch $@

setup: $(VENV)/.core-installed
setup-test: $(VENV)/.test-installed chromium

# Debian's chromium for the browser tests; installed only when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

demo: setup
	@$(BIN)/python examples/demo.py

# In parallel, one module per worker at a time (see group_by_module in tests/conftest.py);
# TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= auto
test: setup-test
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --maxprocesses 4 --dist loadgroup

# A second venv with runlog's base install only (no extras) and the test runner: the
# tests of an extra that is missing skip, saying which. The versions are the [test] extra's.
BASE := .venv-base

$(BASE)/bin/python:
	@echo "creating $(BASE) (once)"
	@$(PYTHON) -m venv $(BASE)
	@$(BASE)/bin/python -m pip install -qq --upgrade pip

$(BASE)/.installed: pyproject.toml | $(BASE)/bin/python
	@echo "installing runlog without extras, and pytest, into $(BASE)"
	@$(BASE)/bin/python -m pip install -qq -e . 'pytest>=8' 'pytest-timeout>=2.3' 'hypothesis>=6.100'
	@touch $@

test-base: $(BASE)/.installed
	$(BASE)/bin/python -m pytest -q -p no:cacheprovider
# The site: mkdocs.yml and docs/; the CLI reference is generated from the click commands.
docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The pictures of the web UI in docs/images/: the demo's runs, served and shot in chromium.
screenshots: setup-test demo
	$(BIN)/python docs/screenshots.py docs/images

soak: setup-test
	$(BIN)/python -m pytest -q --soak tests/reliability

bench: setup-test
	$(BIN)/python -m bench $(ARGS)

schema: setup
	$(BIN)/python -c 'from runlog.models import run_log_json_schema_text as t; print(t(), end="")' > schema/runlog.schema.json

# What `make demo` wrote (its runs, their catalog files, the index), and test caches.
clean:
	rm -rf .run_log_store/demo-* .catalog/demo-* runlog.db runlog.db-wal runlog.db-shm .pytest_cache .hypothesis site
