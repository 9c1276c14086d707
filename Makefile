# boresnet: every target creates the virtual environment it needs.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?=
DATA_DIR ?= data
# torch is installed first on its own: pip then takes the build this machine provides.
TORCH_SPEC ?= torch torchvision

.PHONY: install test test-fast lint bo train tensorboard bench clean docs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip >/dev/null
	$(BIN)/pip install $(TORCH_SPEC)
	$(BIN)/pip install -e '.[dev,bench]'
	@touch $(STAMP)

install: $(STAMP)  ## virtual environment with the package (editable) and dev tools

test: $(STAMP)  ## the whole test suite
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=10  # both cores; the slowest ten

test-fast: $(STAMP)  ## the unit tests only (under a minute): for the edit loop
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not slow"

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check boresnet tests benchmarks
	$(BIN)/ruff format --check boresnet tests benchmarks

bo: $(STAMP)  ## the study: GPU profile with a CUDA GPU, CPU profile otherwise
	@config="$(CONFIG)"; \
	if [ -z "$$config" ]; then \
	  if $(BIN)/python -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then \
	    config=configs/kmnist.yaml; echo "CUDA GPU found: using $$config"; \
	  else config=configs/cpu.yaml; echo "no CUDA GPU: using the CPU profile $$config"; fi; \
	fi; \
	$(BIN)/boresnet bo --config $$config --data-dir $(DATA_DIR)

train: $(STAMP)  ## one trial of the CPU profile at LR (default 0.1)
	$(BIN)/boresnet train --config $(or $(CONFIG),configs/cpu.yaml) --data-dir $(DATA_DIR) --lr $(or $(LR),0.1)

tensorboard: $(STAMP)  ## TensorBoard over all runs
	$(BIN)/tensorboard --logdir lightning_logs

bench: $(STAMP)  ## quick versions of the benchmarks (the committed results stay untouched)
	$(BIN)/python benchmarks/bo_regret.py --reps 5 --methods boresnet,random,grid,tpe_short,gp_short,prototype --out lightning_logs/bench
	$(BIN)/python benchmarks/throughput.py --quick --out lightning_logs/bench/throughput.json

clean:
	rm -rf lightning_logs .pytest_cache .ruff_cache

docs: $(STAMP)  ## regenerate the README figures from a real CPU study
	rm -rf lightning_logs/docs-run
	$(BIN)/boresnet bo --config configs/cpu.yaml --data-dir $(DATA_DIR) --trainer.progress_bar false --run-dir lightning_logs/docs-run
	$(BIN)/python -c "from PIL import Image; im = Image.open('lightning_logs/docs-run/figures/$(or $(ITER),iteration_05).png'); im.save('docs/iteration.png', optimize=True)"
	$(BIN)/python -c "from PIL import Image; im = Image.open('lightning_logs/docs-run/figures/summary.png'); im.save('docs/summary.png', optimize=True)"
