# The two commands: `make run` (the whole product with a demo) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test lint browser-deps clean mutation

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

run: $(INSTALLED)
	$(PY) -m devservices.stack

# Debian's chromium for the browser tests (never a downloaded browser build).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(INSTALLED) browser-deps
	$(PY) -m devservices.testrun

# Mutation testing of the money- and access-critical modules (mutation.toml); not part of `make test` or CI.
mutation: $(INSTALLED)
	nice -n 19 $(PY) -m devservices.mutation $(AREAS)

clean:
	rm -rf .run .mutation
