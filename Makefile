# Two commands a newcomer needs:  `make repro`  (main job)  and  `make test`  (the suite).
# Both set themselves up from nothing: a venv, the CPU torch wheel first, then the package.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
OUT    ?= runs/quick
STAMP   = $(VENV)/.installed

.PHONY: setup browser repro test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,ray]'
	touch $(STAMP)

setup: $(STAMP)

# Exit status 0 only when every claim passed; the report is written either way.
repro: $(STAMP)
	$(BIN)/innerworks repro all --quick --out $(OUT)

# Headless Chromium for the report's browser test (Debian packages; needs root). Outside CI a failure only skips that test.
browser:
	bash scripts/install_browser.sh || [ -z "$$CI" ]

lint: $(STAMP)
	$(BIN)/ruff check src tests bench conftest.py

test: $(STAMP) browser lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	for f in bench/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
