# Two commands for a fresh clone:
#   make demo   bootstrap .venv and run `lash-store demo`
#   make test   bootstrap .venv with every extra; ruff, mypy and the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
LASH_STORE_URLS ?= memory://

.PHONY: demo test lint typecheck pytest conformance bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/lash-store demo

test: lint typecheck pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# The project's own tests plus the conformance suite on every URL in LASH_STORE_URLS.
pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -q -rs --pyargs lash_store_conformance tests \
		$(foreach url,$(LASH_STORE_URLS),--lash-store $(url)) $(PYTEST_ARGS)

conformance: $(VENV)/.installed
	$(BIN)/lash-store conformance $(firstword $(LASH_STORE_URLS))

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/commits.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
