# The two commands a user needs: `make run` and `make test`.
# Everything else here is set-up they share: a virtual environment, the pip
# packages, and (for the browser tests) Debian's chromium.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test test-faults setup browser clean

run: setup
	$(BIN)/pizzashop up

# Everything: unit, integration (real Kafka), fault and browser tests.
test: setup browser
	$(BIN)/pytest $(PYTEST_ARGS)

# Only the fault tests (killed services, broker restarts, a node of three lost).
test-faults: setup
	$(BIN)/pytest -m faults $(PYTEST_ARGS)

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

browser:
	@scripts/ensure-chromium

clean:
	rm -rf $(VENV) .pytest_cache
