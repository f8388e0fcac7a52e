# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lakecast-installed
export LAKECAST_HOME ?= $(CURDIR)/.lakecast

.PHONY: demo test lint bench lock clean help

help:
	@echo "make demo   - set up .venv and run the main job end to end"
	@echo "make test   - set up .venv, lint, type-check and run the test suite"
	@echo "make bench  - run the benchmarks in bench/ (prints RESULT lines)"

# Install from the lock file so every machine gets the same versions; pip's cache is kept.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel setuptools
	$(BIN)/python -m pip install --constraint requirements.lock -e '.[dev,datasets]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lakecast demo

# The host's clock must not matter: the whole suite in UTC, then the time-sensitive tests
# (marker `tz`) again in two other zones, one with a half-hour offset.
test: $(STAMP)
	$(BIN)/ruff check pipelines models jobs conf tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	TZ=UTC $(BIN)/python -m pytest
	TZ=America/New_York $(BIN)/python -m pytest -m tz -q
	TZ=Asia/Kolkata $(BIN)/python -m pytest -m tz -q

# The benchmark-only extra (statsforecast, for bench.accuracy_bench), on top of the lock.
BENCH_STAMP := $(VENV)/.lakecast-bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --constraint requirements.lock -e '.[dev,datasets,bench]'
	@touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python -m bench.run_all

# Re-resolve the pinned set after changing dependencies in pyproject.toml.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^lakecast' > requirements.lock

clean:
	rm -rf $(VENV) .lakecast .pytest_cache .mypy_cache .ruff_cache
