# Two entry points on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export ORT_DISABLE_TELEMETRY := 1

.PHONY: install demo test lint format clean-venv

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --upgrade pip >/dev/null
	$(BIN)/pip install -e '.[test]'
	# resemblyzer drags in the Python-2 era `typing` backport, which shadows the standard library.
	-$(BIN)/pip uninstall -y typing >/dev/null 2>&1
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/voicebox demo --out demo-out

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

test: lint
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
