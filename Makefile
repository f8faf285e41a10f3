VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(VENV)/bin/kvmpmu run --filter configs/deny-shared-cache.yaml --workload configs/workload-basic.yaml

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check kvmpmu tests $(wildcard bench)
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
