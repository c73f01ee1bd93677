# One virtualenv per checkout; every target installs what it needs, so a fresh clone
# only needs `make run` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/waferview replay

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/waferview bench

clean:
	rm -rf $(VENV) .pytest_cache
	find waferview -name "*.nbi" -o -name "*.nbc" | xargs rm -f   # numba caches
