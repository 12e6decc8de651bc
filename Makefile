# The user's verbs. Every target works on a fresh clone: `install` creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The extras the test suite needs: the ClickHouse and Snowflake drivers, the Snowflake emulator, and the
# scale-out clients (Celery, Kubernetes, Databricks) whose configuration the tests build.
EXTRAS := dev,clickhouse,snowflake,oracle,emulators,celery,k8s,databricks

.PHONY: install bytecode dev test lint checks bench bench-location bench-upkeep bench-demo-load bench-throughput bench-cdc celery-hosts celery-stop celery-status db-start db-stop s3-start s3-stop clickhouse-start clickhouse-stop snowflake-start snowflake-stop cdc-pg-start cdc-pg-stop cdc-maria-start cdc-maria-stop clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade uv || true
	@if [ -x $(BIN)/uv ]; then $(BIN)/uv pip install -q --python $(BIN)/python -e '.[$(EXTRAS)]'; \
	 else $(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'; fi
	@# Bytecode up front: under PYTHONDONTWRITEBYTECODE every worker process would otherwise
	@# recompile its imports (about 1 s a load).
	@$(BIN)/python -m compileall -q -j0 $(VENV)/lib >/dev/null 2>&1 || true
	@touch $(STAMP)
	@echo "installed into $(VENV)"

# Our own modules' bytecode, refreshed for the files that changed: under PYTHONDONTWRITEBYTECODE an
# editable install would otherwise compile them again in every worker process (0.05-0.1 s a load).
bytecode: install
	@$(BIN)/python -m compileall -q -j0 dataloader_contract control_db pipes_workers dataloader_defs benchmarks scripts >/dev/null || true

# `make dev PORT=3100`: the UI (and the run links on the control rows) on another port.
dev: bytecode
	$(BIN)/python scripts/dev.py $(if $(PORT),--port $(PORT))

test: bytecode
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

checks: bytecode
	$(BIN)/python scripts/checks.py

bench: bytecode
	@if [ -x $(BIN)/uv ]; then $(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev,bench]'; \
	 else $(BIN)/python -m pip install -q -e '.[dev,bench]'; fi
	@$(BIN)/python -m compileall -q -j0 $(VENV)/lib >/dev/null 2>&1 || true
	$(BIN)/python -m benchmarks.run

bench-throughput: bytecode
	$(BIN)/python -m benchmarks.throughput

bench-location: bytecode
	$(BIN)/python -m benchmarks.location_load

bench-upkeep: bytecode
	$(BIN)/python -m benchmarks.upkeep

# `make dev`'s demo while a CPU burner keeps the load average >= 10 (README, Reliability under load).
bench-demo-load: bytecode
	$(BIN)/python -m benchmarks.demo_under_load

# A large change merged into a partitioned table: held, spooled and pruned, or streamed unpruned.
bench-partition: bytecode
	$(BIN)/python -m benchmarks.partition_merge

# cdc against incremental with 1% of the rows changed (needs `make cdc-pg-start`); BENCH_CDC_ROWS.
bench-cdc: bytecode
	$(BIN)/python -m benchmarks.cdc_bench

# A Celery deployment on this machine (deploy/celery, README Scale-out): a code server, the daemon with
# the CeleryRunLauncher, and N worker hosts, each in its own folder under .dataloader/celery.
# Needs DATALOADER_CONTROL_DB_URL, DAGSTER_PG_URL and an s3:// DATALOADER_LAKE_ROOT (make s3-start).
N ?= 3
celery-hosts: bytecode
	$(BIN)/python scripts/celery_hosts.py start --hosts $(N)

celery-status: install
	$(BIN)/python scripts/celery_hosts.py status

celery-stop: install
	$(BIN)/python scripts/celery_hosts.py stop

db-start: install
	$(BIN)/python -m control_db.embedded start

db-stop: install
	$(BIN)/python -m control_db.embedded stop

s3-start: install
	$(BIN)/python scripts/s3_emulator.py start

s3-stop: install
	$(BIN)/python scripts/s3_emulator.py stop

# A throwaway clickhouse-server on 127.0.0.1:9000 (apt-get install clickhouse-server first).
clickhouse-start:
	scripts/clickhouse_server.sh start

clickhouse-stop:
	scripts/clickhouse_server.sh stop

# The Snowflake emulator (fakesnow server mode) on 127.0.0.1:8091.
snowflake-start: install
	scripts/snowflake_emulator.sh start

snowflake-stop:
	scripts/snowflake_emulator.sh stop

# A PostgreSQL with wal_level=logical on 127.0.0.1:5441 for the cdc tests (data in /tmp/cdc-pg-data).
cdc-pg-start:
	scripts/cdc_postgres.sh start

cdc-pg-stop:
	scripts/cdc_postgres.sh stop

# A MariaDB with the row-based binlog on 127.0.0.1:3341 for the MySQL/MariaDB cdc capture's tests
# (data in /tmp/cdc-maria-data; the machine's MariaDB on 3306 is left alone).
cdc-maria-start:
	scripts/cdc_mariadb.sh start

cdc-maria-stop:
	scripts/cdc_mariadb.sh stop

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
