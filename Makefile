# The two commands: `make up` runs Sluice with a demo, `make test` runs the whole test suite.
# Both create or reuse .venv and install what they need first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sluice-installed

NODE_STAMP := tests/oidc/node_modules/.sluice-installed
AXE_STAMP := tests/browser/node_modules/.sluice-installed

.PHONY: up test lint lock services install clean

# Python keeps the compiled form of each module beside it (__pycache__, ignored by git), even where the
# environment asks it not to: the tests start hundreds of Python processes, and each one would compile
# Sluice's sources (and pytest rewrite the tests) again, about half a second a process.
unexport PYTHONDONTWRITEBYTECODE

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Sluice needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/sluice up --demo

services:
	@bash scripts/ensure-services.sh

# The OpenID Provider the sign-in tests run (oidc-provider from npm, on the machine's Node.js).
$(NODE_STAMP): tests/oidc/package.json tests/oidc/package-lock.json
	@command -v npm >/dev/null || { echo "the sign-in tests need Node.js and npm"; exit 1; }
	npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

# axe-core, which the portal's accessibility tests inject into each page.
$(AXE_STAMP): tests/browser/package.json tests/browser/package-lock.json
	@command -v npm >/dev/null || { echo "the browser tests need Node.js and npm"; exit 1; }
	npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
	@touch $(AXE_STAMP)


# Tests run in parallel processes: most of them wait on servers and subprocesses, so more processes than
# cores pay off. Every fixture makes its own databases, directories and ports, so they never collide.
# The few tests marked `timing` compare a duration with a baseline they measure themselves, or must fit
# their steps within a short grant; with four processes on two cores neither holds reliably, so they
# run afterwards, one at a time.
TEST_PROCESSES ?= 4

test: $(STAMP) $(NODE_STAMP) $(AXE_STAMP) services
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy src
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist worksteal -m "not timing" --durations=15
	$(BIN)/pytest -m timing

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy src

# Re-resolves the newest versions pyproject.toml allows into a fresh venv and writes them down.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet -e '.[dev]'
	{ sed -n '1,2p' constraints.txt; .venv-lock/bin/pip freeze --exclude-editable | grep -v -E '^(pip|setuptools|wheel)=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf .venv-lock

clean:
	rm -rf $(VENV) .sluice .pytest_cache .ruff_cache tests/oidc/node_modules tests/browser/node_modules
