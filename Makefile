# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ENGINES_STAMP := $(VENV)/.installed-engines

.PHONY: demo test test-slow test-engines install clean docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# The dbt docs site: lineage from the sources to every sync exposure, and the attribute owners
# (models/_overview__docs.md, written from meta.owner). Without a warehouse yet, it builds the
# models empty (structure only) for the column types; after `make demo` it documents that one.
docs: $(STAMP)
	$(BIN)/python scripts/attribute_owners.py
	@test -f "$${PUSHER_DUCKDB_PATH:-warehouse/retention.duckdb}" || { mkdir -p warehouse && \
		$(BIN)/dbt seed --profiles-dir . && $(BIN)/dbt run --empty --profiles-dir .; }
	$(BIN)/dbt docs generate --static --profiles-dir .
	@echo "docs: open target/static_index.html in a browser (one file), or run: $(BIN)/dbt docs serve --profiles-dir ."

# SQL lint: sqlfluff with the dbt templater (.sqlfluff); compiling opens a throwaway DuckDB file.

# The suite on TEST_WORKERS processes (pytest-xdist), a test file at a time each; 0 runs it in this one.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/ruff check .
	PUSHER_DUCKDB_PATH=$$(mktemp -d)/lint.duckdb $(BIN)/sqlfluff lint models
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

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
