# `make run` and `make test` set everything up on a fresh machine (Python >= 3.11 needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
# pytest processes (pytest-xdist): the integration tests mostly wait on servers they start,
# so two test processes keep both cores busy; a file's tests stay in one process.
TEST_WORKERS ?= 2

.PHONY: install run test test-fast lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,stonesoup]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/tp pipeline $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/tp bench generate
	$(BIN)/tp bench tracks
	$(BIN)/tp bench model
	$(BIN)/tp bench features
	$(BIN)/tp bench families

clean:
	rm -rf data/ checkpoints/ reports/ mlruns/ mlflow.db .pytest_cache
