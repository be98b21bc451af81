# The two commands a fresh machine needs: `make build` and `make test`.
VENV := .venv
OBSGEN := $(VENV)/bin/obsgen

.PHONY: setup build test test-fast e2e check clean bench fuzz

setup:
	scripts/setup.sh

build: setup
	$(OBSGEN) build specs/maple.yaml

# Every spec, as CI checks it.
check: setup
	$(OBSGEN) build specs --check

test: setup
	$(VENV)/bin/python -m pytest -q

# The inner loop (under a minute): everything but the e2e servers, promtool runs and slow round trips.
test-fast: setup
	$(VENV)/bin/python -m pytest -q -m "not e2e and not promtool and not slow"

# Only the end-to-end tests (real Prometheus, Redis + Sentinel, redis_exporter, the reference app);
# `make test` runs them too.
e2e: setup
	$(VENV)/bin/python -m pytest -q -m e2e tests/e2e

# Thousands of random specs (tests/test_properties.py): 2,000 valid ones through promtool, 1,000 broken, 1,000 garbled.
# FUZZ_EXAMPLES=n scales it (n batches of 20 valid specs, n broken and n garbled ones).
fuzz: setup
	HYPOTHESIS_PROFILE=thorough $(VENV)/bin/python -m pytest -q tests/test_properties.py --hypothesis-show-statistics

clean:
	rm -rf $(VENV) .pytest_cache

# Benchmarks (issue 9): prints one table, writes benchmarks/results/latest.json. Not part of `make test`.
bench: setup
	$(VENV)/bin/python benchmarks/bench.py
