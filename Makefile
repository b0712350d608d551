# Two commands for a fresh machine that has only python3, pip and make:
#   make test    lint + the whole test suite (what CI runs)
#   make train   (arrives with the agent package)
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: test lint sync system-deps uv standalone-ssmscan bench-scan bench-train-step

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

test: lint standalone-ssmscan
	@$(UV) run --locked python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "ERROR: pytest collected no tests; refusing to pass" >&2; fi; exit $$rc

# Proof that ssmscan installs alone: its wheel in a fresh venv with only its own dependencies.
standalone-ssmscan: uv
	bash tools/check_standalone_ssmscan.sh

bench-scan: sync
	$(UV) run --locked python tools/bench_scan.py

bench-train-step: sync
	$(UV) run --locked python tools/bench_train_step.py
