# Two commands for a fresh clone:
#   make demo   bootstrap .venv and run `lash-store demo`
#   make test   bootstrap .venv with every extra; ruff, mypy and the whole test suite
# and, run by CI after make test:
#   make install-check   install HEAD in fresh venvs (bare, wheel, make demo) and use it
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# The URLs the conformance suite runs on; empty means memory://, SQLite (each test in a fresh
# temporary file) and the PostgreSQL URL that scripts/pgserver.py picks
# (see docs/testing-with-postgres.md).
LASH_STORE_URLS ?=
PGSERVER := $(BIN)/python scripts/pgserver.py

.PHONY: demo test lint typecheck pytest install-check bootstrap-pgbouncer conformance bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

# The demo runs on a durable SQLite file (made afresh each time); then other processes read
# it back: the sessions are still there after the demo's process has exited.
DEMO_DIR ?= .demo
DEMO_URL := sqlite:///$(DEMO_DIR)/store.db
demo: $(VENV)/.installed
	@mkdir -p $(DEMO_DIR) && rm -f $(DEMO_DIR)/store.db $(DEMO_DIR)/store.db-wal $(DEMO_DIR)/store.db-shm
	$(BIN)/lash-store demo $(DEMO_URL)
	@echo
	@echo "The demo's process has exited. Another process reads the same file:"
	$(BIN)/lash-store sessions $(DEMO_URL)
	@chat=$$($(BIN)/lash-store sessions $(DEMO_URL) --prefix demo- | awk '/-chat /{print $$1}'); \
	echo "$(BIN)/lash-store show $(DEMO_URL) $$chat --active"; \
	$(BIN)/lash-store show $(DEMO_URL) "$$chat" --active

test: lint typecheck pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# The project's own tests plus the conformance suite on memory://, SQLite and PostgreSQL (or on
# LASH_STORE_URLS). `pgserver.py ensure` prints the PostgreSQL URL ($LASH_STORE_PG_URL, a
# server at 127.0.0.1:5432, or a throwaway cluster in .pgtmp/) or fails with one line; pytest
# gets it as LASH_STORE_PG_URL. A throwaway cluster started here is stopped afterwards.
# Without PYTEST_ARGS two pytest processes share the work, each waiting on the server much of
# its time: the project's tests in one; beside it the conformance suite, then the tests marked
# pgbouncer (among them the whole suite again, through PgBouncer), their output shown after.
pytest: $(VENV)/.installed-dev bootstrap-pgbouncer
	@kept=$$($(PGSERVER) status 2>/dev/null); \
	pg_url=$$($(PGSERVER) ensure) || exit 1; \
	if [ -z "$$kept" ] && [ -d .pgtmp ]; then \
		trap '$(PGSERVER) stop' EXIT; trap 'exit 130' INT TERM; \
	fi; \
	urls='$(LASH_STORE_URLS)'; args=; \
	for url in $${urls:-memory:// sqlite:///:memory: $$pg_url}; do args="$$args --lash-store $$url"; done; \
	if [ -n '$(PYTEST_ARGS)' ]; then \
		echo "LASH_STORE_PG_URL=$$pg_url $(BIN)/pytest -q -rs --pyargs lash_store_conformance" \
			"tests$$args $(PYTEST_ARGS)"; \
		LASH_STORE_PG_URL=$$pg_url $(BIN)/pytest -q -rs --pyargs lash_store_conformance tests \
			$$args $(PYTEST_ARGS); \
		exit $$?; \
	fi; \
	log=$$(mktemp); \
	echo "(LASH_STORE_PG_URL=$$pg_url $(BIN)/pytest -q -rs --pyargs lash_store_conformance$$args;" \
		"$(BIN)/pytest -q -rs -m pgbouncer tests) &"; \
	( LASH_STORE_PG_URL=$$pg_url $(BIN)/pytest -q -rs -p no:cacheprovider \
		--pyargs lash_store_conformance $$args; suite=$$?; \
	LASH_STORE_PG_URL=$$pg_url $(BIN)/pytest -q -rs -p no:cacheprovider -m pgbouncer tests; \
	bouncer=$$?; [ $$suite -eq 0 ] && [ $$bouncer -eq 0 ] ) > $$log 2>&1 & beside=$$!; \
	echo "LASH_STORE_PG_URL=$$pg_url $(BIN)/pytest -q -rs -m 'not pgbouncer' tests"; \
	LASH_STORE_PG_URL=$$pg_url $(BIN)/pytest -q -rs -m 'not pgbouncer' tests; main=$$?; \
	wait $$beside; through=$$?; \
	echo "--- the conformance suite and the tests marked pgbouncer (ran beside the rest):"; \
	cat $$log; rm -f $$log; \
	[ $$main -eq 0 ] && [ $$through -eq 0 ]

# Installs the commit at HEAD as users do, each way in a fresh venv in a temporary folder (never
# .venv): bare, bare plus pytest, the wheel with [postgres,conformance], `make demo` in a clone;
# one PASS/FAIL line per check (scripts/install_check.py). It needs only python3 and git; the
# wheel's conformance run uses the PostgreSQL URL that `pgserver.py ensure` picks, as `pytest`
# does. INSTALL_CHECK_ARGS passes options, e.g. --only wheel --keep.
INSTALL_CHECK_ARGS ?=
install-check:
	@kept=$$($(PYTHON) scripts/pgserver.py status 2>/dev/null); \
	pg_url=$$($(PYTHON) scripts/pgserver.py ensure) || exit 1; \
	if [ -z "$$kept" ] && [ -d .pgtmp ]; then \
		trap '$(PYTHON) scripts/pgserver.py stop' EXIT; trap 'exit 130' INT TERM; \
	fi; \
	$(PYTHON) scripts/install_check.py --pg-url "$$pg_url" $(INSTALL_CHECK_ARGS)

# The PgBouncer test needs pgbouncer: as root with apt-get it is installed here, with service
# starts blocked (policy-rc.d) so that no system pgbouncer is left running.
bootstrap-pgbouncer:
	@if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ] \
		&& [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing pgbouncer with apt-get (for tests/test_pgbouncer.py)"; \
		policy=; if [ ! -e /usr/sbin/policy-rc.d ]; then policy=/usr/sbin/policy-rc.d; \
			printf '#!/bin/sh\nexit 101\n' >$$policy; chmod +x $$policy; fi; \
		install='env DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer'; \
		$$install >/dev/null 2>&1 || { apt-get update -q >/dev/null && $$install >/dev/null; } \
			|| echo "note: apt-get could not install pgbouncer; tests/test_pgbouncer.py needs it"; \
		if [ -n "$$policy" ]; then rm -f $$policy; fi; \
	fi

conformance: $(VENV)/.installed
	$(BIN)/lash-store conformance $(or $(firstword $(LASH_STORE_URLS)),memory://)

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/commits.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
