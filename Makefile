# The two commands a user needs: `make run` and `make test`.
# Everything else here is set-up they share: a virtual environment, the pip
# packages, and for the tests Debian's chromium and a JDK.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint test-faults setup test-tools clean

run: setup
	$(BIN)/pizzashop up

# Everything: the lint and type checks, then unit, integration (real Kafka), fault and
# browser tests.
test: lint test-tools
	$(BIN)/pytest $(PYTEST_ARGS)

# ruff (format and lint) and mypy (strict), with the settings in pyproject.toml.
lint: setup
	$(BIN)/ruff format --check src tests
	$(BIN)/ruff check src tests
	$(BIN)/mypy

# Only the fault tests (killed services, broker restarts, a node of three lost).
test-faults: setup
	$(BIN)/pytest -m faults $(PYTEST_ARGS)

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Debian's chromium for the browser tests, a JDK for the Java producer in the interop tests,
# PostgreSQL for the read model's tests on it, kustomize for the deployment files' test.
test-tools:
	@scripts/ensure-chromium
	@scripts/ensure-jdk
	@scripts/ensure-postgres
	@scripts/ensure-kustomize

clean:
	rm -rf $(VENV) .pytest_cache
