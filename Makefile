# Two entry points (README "Quick start"):
#   make demo  - set up .venv and run the main job (stanet-rt demo) on its defaults
#   make test  - set up .venv and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel of torch is pinned: an unpinned torch would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup test test-fast demo default-model lint clean gpu-check

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

demo: setup
	$(BIN)/stanet-rt demo

# The default model: the weakly supervised pipeline end to end on the synthetic set (synth-lite preset,
# < 30 min on a 2-core CPU), its report in benchmarks/results/, its students installed in stanet_rt/assets/
# (the shipped default; without --install-dir, --install-default installs into the user's data folder).
default-model: setup
	$(BIN)/stanet-rt train all --preset synth-lite --out runs/synth-lite --results benchmarks/results --install-default --install-dir stanet_rt/assets

# On a CUDA machine: gpu-marked tests + torch CUDA benchmarks (STA, STA+, STANet+, default; fp32/fp16; eager and
# CUDA graphs) into benchmarks/results/ in < 8 min. Uses python3 with CUDA torch, not the CPU-only .venv.
gpu-check:
	bash benchmarks/gpu_check.sh

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
