# One command to set up and open the demo, one to set up and run the tests.
# Both create .venv, install the package (which builds the JS widget with npm) and its test deps.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: setup demo test test-python test-js test-notebooks test-browser test-slow bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml js/package.json js/package-lock.json
	cd js && npm ci --no-audit --no-fund
	$(BIN)/python -m pip install --quiet -e ".[test,plot]"
	touch $@

setup: $(VENV)/.installed

# Jupyter refuses to run as root unless told to (containers and CI machines often are root).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

demo: setup
	$(BIN)/jupyter lab $(ALLOW_ROOT) notebooks/01_quickstart.ipynb

test: setup test-js test-python test-notebooks

test-python: setup
	$(BIN)/python -m pytest -m "not browser and not slow"

test-js: setup
	cd js && npm test && npm run typecheck

test-notebooks: setup
	$(BIN)/python -m pytest --nbval-lax -p no:cacheprovider notebooks/

test-slow: setup
	$(BIN)/python -m pytest -m slow

test-browser: setup
	@command -v chromium >/dev/null || { echo "installing Debian's chromium"; apt-get update -qq && apt-get install -y -qq chromium; }
	$(BIN)/python -m pytest -m browser

bench: setup
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) js/node_modules llmgrid_nb/static build dist *.egg-info
