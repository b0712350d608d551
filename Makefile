# Two commands for a fresh machine that has only python3, pip and make:
#   make test    lint + the whole test suite (what CI runs)
#   make train   trains R2I on a BSuite memory task with a CPU-sized preset (a few minutes), logs in runs/
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

TRAIN_ENV ?= bsuite/memory_len/4
TRAIN_STEPS ?= 20000
TRAIN_STAMP := $(shell date +%Y%m%d-%H%M%S)
TRAIN_LOGDIR ?= runs/make-train-$(TRAIN_STAMP)

.PHONY: train test lint sync system-deps uv standalone-ssmscan bench-scan bench-train-step

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

system-deps:
	@bash tools/install_system_deps.sh

sync: uv system-deps
	$(UV) sync --locked --all-packages

lint: sync
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .
	$(UV) run --locked lint-imports

# Two pytest runs (tools/run_tests.sh): the tests on 2 workers, then the timed learning test alone.
test: lint standalone-ssmscan
	@UV="$(UV)" bash tools/run_tests.sh $(PYTEST_ARGS)

train: sync
	$(UV) run --locked r2i-agent train --env $(TRAIN_ENV) --preset cpu --steps $(TRAIN_STEPS) --logdir $(TRAIN_LOGDIR)
	@echo "learning curve: $(UV) run r2i-agent plot $(TRAIN_LOGDIR) -o curve.png; evaluate: $(UV) run r2i-agent eval --logdir $(TRAIN_LOGDIR)"

# Proof that ssmscan installs alone: its wheel in a fresh venv with only its own dependencies.
standalone-ssmscan: uv
	bash tools/check_standalone_ssmscan.sh

bench-scan: sync
	$(UV) run --locked python tools/bench_scan.py

bench-train-step: sync
	$(UV) run --locked python tools/bench_train_step.py
