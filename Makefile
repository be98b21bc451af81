# The two commands a fresh machine needs: `make build` and `make test`.
VENV := .venv
OBSGEN := $(VENV)/bin/obsgen

.PHONY: setup build test check fuzz clean

setup:
	scripts/setup.sh

build: setup
	$(OBSGEN) build specs/maple.yaml

# Every spec, as CI checks it.
check: setup
	$(OBSGEN) build specs --check

test: setup
	$(VENV)/bin/python -m pytest -q

# Thousands of random specs (tests/test_properties.py): 2,000 valid ones through promtool, 1,000 broken, 1,000 garbled.
# FUZZ_EXAMPLES=n scales it (n batches of 20 valid specs, n broken and n garbled ones).
fuzz: setup
	HYPOTHESIS_PROFILE=thorough $(VENV)/bin/python -m pytest -q tests/test_properties.py --hypothesis-show-statistics

clean:
	rm -rf $(VENV) .pytest_cache
