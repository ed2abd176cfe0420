# Two commands on a fresh machine with only Python 3.11+:  make demo  ·  make test
# Each sets itself up: uv (pinned) in .tools/, the locked dependencies in .venv/.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never

DBT_MANIFEST := dbt/target/manifest.json

.PHONY: setup demo test test-fast lint check-defs bench dev clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

# The dbt manifest the Dagster dbt assets are built from (parsing needs no database).
$(DBT_MANIFEST): $(VENV)/.synced $(shell find dbt -path dbt/target -prune -o -path dbt/logs -prune -o -type f -print)
	$(VENV)/bin/python -m glaze_pipeline.defs.dbt.project

setup: $(VENV)/.synced $(DBT_MANIFEST)

demo: setup  ## enrich the bundled fictional companies end to end and print the rows from Postgres
	$(VENV)/bin/glaze demo

test: setup  ## the test suite, on real PostgreSQL and Redis (embedded unless GLAZE_*_URL are set)
	$(VENV)/bin/pytest

test-fast: setup  ## everything but the whole-job runs (marker `slow`): about a minute
	$(VENV)/bin/pytest -m "not slow"

check-defs: setup  ## both code locations load: every definition under glaze_pipeline/defs/ (dg check defs), and the record location
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/dg check defs
	DAGSTER_HOME= $(VENV)/bin/dagster definitions validate -m glaze_pipeline.record_definitions

lint: setup
	$(VENV)/bin/ruff check glaze_pipeline glaze_pipeline_tests bench
	$(VENV)/bin/ruff format --check glaze_pipeline glaze_pipeline_tests bench
	$(VENV)/bin/mypy glaze_pipeline bench

bench: setup
	$(VENV)/bin/python bench/enrich_throughput.py --rows 2000
	$(VENV)/bin/python bench/paid_throughput.py --rows 10000 --repeat 3

dev: setup  ## Dagster UI + daemon on this project, with the servers
	$(VENV)/bin/glaze dev

clean:  ## stop the servers and remove the venv and tools (the data in GLAZE_HOME stays)
	-$(VENV)/bin/glaze services down
	rm -rf $(VENV) .tools .glaze dbt/target dbt/logs
