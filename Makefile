# The two commands a fresh machine needs: `make build` and `make test`.
VENV := .venv
OBSGEN := $(VENV)/bin/obsgen

.PHONY: setup build test check clean

setup:
	scripts/setup.sh

build: setup
	$(OBSGEN) build specs/maple.yaml

# Every spec, as CI checks it.
check: setup
	$(OBSGEN) build specs --check

test: setup
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
