# The two commands a user needs: `make run` and `make test`.
# Everything else here is set-up they share: uv (pinned, hash-checked), a virtual environment
# holding exactly what uv.lock says, and for the tests Debian's chromium, a JDK, PostgreSQL and
# kustomize.

# Another Python: `make test PYTHON=python3.13 VENV=.venv-3.13` (see docs/development/index.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# uv itself, from scripts/uv-requirements.txt (one version, every wheel's hash).
UV_HOME := .uv
UV      := $(UV_HOME)/bin/uv
# uv never downloads a Python of its own: the venv is made from $(PYTHON).
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test check lint docs unit test-faults setup lock upgrade test-tools clean

run: setup
	$(BIN)/pizzashop up

# Everything: the lint and type checks, then unit, integration (real Kafka), fault and
# browser tests, in TEST_WORKERS processes (each with its own broker: most tests wait on
# Kafka rather than use a core). Tests that share a cluster of their own stay on one worker.
TEST_WORKERS ?= 3
test: lint docs test-tools
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15 $(PYTEST_ARGS)

# The fast inner loop: format, lint and type checks, the docs, and every test that needs no broker.
check: lint docs unit

# ruff (format and lint) and mypy (strict), with the settings in pyproject.toml.
lint: setup
	$(BIN)/ruff format --check src tests
	$(BIN)/ruff check src tests
	$(BIN)/mypy

# The docs site (mkdocs.yml) into site/: --strict fails on a broken link or anchor, and on a
# page missing from the navigation. (NO_MKDOCS_2_WARNING quiets a banner about MkDocs' future.)
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The tests that need no broker (the read model's run on SQLite and PostgreSQL, the deployment
# files' through kustomize), on both cores.
unit: setup
	@scripts/ensure-postgres
	@scripts/ensure-kustomize
	$(BIN)/pytest tests/unit -n 2 -q $(PYTEST_ARGS)

# Only the fault tests (killed services, broker restarts, a node of three lost).
test-faults: setup test-tools
	$(BIN)/pytest -m faults -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

setup: $(VENV)/.installed

$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet --disable-pip-version-check --require-hashes \
		-r scripts/uv-requirements.txt

# Exactly the lock: every package at its locked version and hash. The project is built last,
# without build isolation, by the locked setuptools, so nothing comes from outside the lock.
$(VENV)/.installed: pyproject.toml uv.lock scripts/uv-requirements.txt | $(UV)
	@scripts/check-lock $(UV)
	$(UV) sync --quiet --locked --all-extras --python $(PYTHON) --no-install-project
	$(UV) sync --quiet --locked --all-extras --python $(PYTHON)
	touch $@

# Write uv.lock again after a change to pyproject.toml, moving no version that still fits.
lock: | $(UV)
	$(UV) lock --python $(PYTHON)

# Move every package to the newest version its range allows, then run everything.
upgrade: | $(UV)
	$(UV) lock --upgrade --python $(PYTHON)
	$(MAKE) test

# Debian's chromium for the browser tests, a JDK for the Java producer in the interop tests,
# PostgreSQL for the read model's tests on it, kustomize for the deployment files' test.
test-tools:
	@scripts/ensure-chromium
	@scripts/ensure-jdk
	@scripts/ensure-postgres
	@scripts/ensure-kustomize

clean:
	rm -rf $(VENV) $(UV_HOME) .pytest_cache .mypy_cache .ruff_cache site
