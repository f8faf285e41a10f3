VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench fuzz realkvm mutation clean

FUZZ_SECONDS ?= 600

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,guest]'
	rm -rf kvmpmu.egg-info  # a by-product: pytest would take it for an installed kvmpmu
	$(PY) -m compileall -q kvmpmu  # as pip does for a regular install
	touch $(STAMP)

run: install
	$(VENV)/bin/kvmpmu run --filter configs/deny-shared-cache.yaml --workload configs/workload-basic.yaml

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check kvmpmu kvmpmu_pytest.py realkvm tests $(wildcard bench)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Random-seeded fuzzing in rounds of 2000 examples until FUZZ_SECONDS have passed.
fuzz: install
	@end=$$(( $$(date +%s) + $(FUZZ_SECONDS) )); round=0; \
	while [ $$(date +%s) -lt $$end ]; do \
		round=$$((round + 1)); echo "fuzz round $$round"; \
		KVMPMU_FUZZ_EXAMPLES=2000 $(PY) -m pytest -q -x -p no:cacheprovider tests/test_fuzz.py \
			|| exit 1; \
	done

bench: install
	$(PY) bench/run.py

# Mutation testing of the emulated kernel (kvmpmu/kvm/; slow, not part of test or CI): mutants
# and results go to mutants/, `.venv/bin/mutmut results` lists the survivors.
mutation: install
	$(VENV)/bin/mutmut run --max-children 2
	$(VENV)/bin/mutmut export-cicd-stats 2>/dev/null || true

# Boots Debian's arm64 kernels under QEMU and checks /dev/kvm inside (realkvm/, README).
# The fetch step fills the cache (outside the checkout); without QEMU the tests skip.
realkvm: install
	if command -v qemu-system-aarch64 >/dev/null; then $(PY) -m realkvm fetch; fi
	$(PY) -m pytest -q -m realkvm

clean:
	rm -rf $(VENV) build *.egg-info mutants
