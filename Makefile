# vidinpaint: `make train` (quickstart) and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The torch build to install (override for your CUDA, e.g. TORCH="torch torchvision")
TORCH ?= torch==2.14.1 torchvision==0.29.1
SAMPLES ?= ../shared/data
export WANDB_SILENT := true

.PHONY: help install train test test-all demo bench lint format clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install vidinpaint with its dev tools (idempotent)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

train: install ## the quickstart: 3DCN, CombCN and 2DCN on synthetic videos, prints a mini Table 2
	$(PY) experiments/aaai19_table2.py sweep=quickstart --jobs 3

test: install ## the default test tier (fast; no GPU, no sample videos needed)
	WANDB_MODE=disabled OMP_NUM_THREADS=2 $(PY) -m pytest -q

test-all: install ## every tier: default + slow + realdata (VIDINPAINT_SAMPLES=$(SAMPLES))
	WANDB_MODE=disabled VIDINPAINT_SAMPLES=$(abspath $(SAMPLES)) $(PY) -m pytest -q -m ''

demo: install ## inpaint a sample clip (bmx-trees with its object masks) with the default method
	$(PY) -m vidinpaint.inpaint input=$(SAMPLES)/object/bmx-trees_frames \
	  mask=$(SAMPLES)/object/bmx-trees_mask output=outputs/demo/bmx-trees_inpainted.mp4 \
	  panel=true overwrite=true
	@echo "demo: outputs/demo/bmx-trees_inpainted.mp4 and outputs/demo/bmx-trees_inpainted_panel.mp4 (input | output)"

bench: install ## data throughput and training step timings (see experiments/benchmarks.md)
	VIDINPAINT_SAMPLES=$(abspath $(SAMPLES)) $(PY) -m vidinpaint.bench data
	$(PY) -m vidinpaint.bench train model=cn3d
	$(PY) -m vidinpaint.bench train model=combcn

lint: install ## ruff lint + format check
	$(VENV)/bin/ruff check src tests experiments
	$(VENV)/bin/ruff format --check src tests experiments

format: install ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix src tests experiments
	$(VENV)/bin/ruff format src tests experiments

clean: ## remove run outputs (keeps .venv and data/)
	rm -rf outputs multirun .pytest_cache
