PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Installed only when pyproject.toml changes, so repeated runs start at once.
STAMP := $(VENV)/.installed

.PHONY: demo test soak install lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/coordinator demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest $(ARGS)

soak: $(STAMP)
	SOAK_SECONDS=$${SOAK_SECONDS:-300} $(BIN)/python -m pytest -m soak -s $(ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(ARGS)
