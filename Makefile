# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ENGINES_STAMP := $(VENV)/.installed-engines

.PHONY: demo test test-slow test-engines install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# The models on a throwaway PostgreSQL server and a local Spark session, compared with DuckDB.
# Needs PostgreSQL's server binaries (Debian: apt-get install postgresql) and Java 17.
$(ENGINES_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,engines]'
	touch $(ENGINES_STAMP)

test-engines: $(ENGINES_STAMP)
	$(BIN)/python -m pytest -m engines tests/engines

clean:
	rm -rf $(VENV) target logs warehouse data/generated .pusher
