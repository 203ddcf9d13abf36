# The two commands a fresh machine needs: `make demo` (set up, then run the main job on the shipped
# defaults) and `make test` (set up, start the test servers, run every test).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[invert,es,otlp,dev]'
	touch $@

demo: setup
	$(VENV)/bin/vecleak demo --dir demo-logs

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) demo-logs .pytest_cache
