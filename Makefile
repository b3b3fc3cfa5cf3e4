# Two entry points, both from a fresh clone with only python3, pip and make:
#   make report   set up the locked environment and build the HCC review's report
#   make test     set up the locked environment and run the linter and the tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: report test setup lock clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

setup: $(STAMP)

report: $(STAMP)
	$(BIN)/review build

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/review protocol check
	$(BIN)/review build --check --quiet
	$(BIN)/pytest

# Re-pin every dependency (needs the package registry); commit the new lock file.
lock:
	$(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet pip-tools
	.lockenv/bin/pip-compile --quiet --no-emit-index-url --generate-hashes --allow-unsafe \
		--extra dev --strip-extras -o requirements.lock pyproject.toml
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
