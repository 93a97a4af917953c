# Two entry points: `make demo` and `make test`. Both create .venv when it is
# missing and (re)install only when pyproject.toml changed, so a second run is fast.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test bench soak setup setup-test chromium schema clean help

help:
	@echo "make demo   - set up .venv and run the bundled example pipelines"
	@echo "make test   - set up everything the tests need and run the whole suite"
	@echo "make bench  - run the benchmarks in bench/ (ARGS=--quick for a short run)"
	@echo "make soak   - the long crash/fuzz variants of the reliability suite"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.core-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.core-installed

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
	$(BIN)/python examples/demo.py

test: setup-test
	$(BIN)/python -m pytest -q

soak: setup-test
	$(BIN)/python -m pytest -q --soak tests/reliability

bench: setup-test
	$(BIN)/python -m bench $(ARGS)

schema: setup
	$(BIN)/python -c 'from runlog.models import run_log_json_schema_text as t; print(t(), end="")' > schema/runlog.schema.json

clean:
	rm -rf demo .pytest_cache .hypothesis
