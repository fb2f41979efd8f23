# adapterdrop: every target that needs the environment depends on `install`, so any of them works
# as the first command on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install.stamp
# torch first, pinned: here a local CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# pip --index-url for the torch install alone, e.g. a CUDA build on a GPU machine:
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cu124 TORCH_SPEC=torch==2.6.0
# Empty: the configured indexes (the CPU wheel above).
TORCH_INDEX ?=

# Real GLUE/SuperGLUE files beside the checkout are used when present (never copied in).
ifneq ($(wildcard ../shared/data),)
export ADAPTERDROP_DATA_DIR ?= $(abspath ../shared/data)
endif
export WANDB_MODE ?= offline
export TOKENIZERS_PARALLELISM ?= false

BENCH := $(PY) -m adapterdrop.cli.bench
TRAIN := $(PY) -m adapterdrop.cli.train
ARGS ?=
# make smoke-gpu SMOKE_ARGS="--only imports,table2 --out /tmp/smoke" (scripts/smoke_gpu.py -h)
SMOKE_ARGS ?=
# Fig. 2 on this CPU, as conf/experiment/fig2_*.yaml set it: MiniLM-L6 (pretrained, offline;
# 6 layers), 3 epochs per run unless the task says more, per task and seed 7 training runs
# (standard, robust, specialized at n = 1..5; its n = 0 is the standard run's training).
# Default: seeded 1000-example subsets of STS-B and SST-2, 3 seeds: 42 runs, 70 min on 2 AVX2
# cores in fp32 (README). A task is task[:examples[:epochs]]: examples sets
# data.limit_examples for every split (SST-2's 872-example dev split stays whole), epochs
# trainer.max_epochs. STS-B trains 6 epochs: at 3, 1000 examples leave it on the steep part of
# its learning curve, where robust AdapterDrop (which trains the adapters below a random n
# on only part of the steps) scored 0.46 at n = 0 against the standard adapter's 0.77 (README).
# The whole splits: FIG2_TASKS="glue/stsb glue/sst2"; more tasks: FIG2_TASKS="glue/stsb
# glue/mrpc"; fewer seeds: FIG2_SEEDS=42. The specialized sweep covers every layer of the
# model but the first. The paper's setting, online on a GPU box: make reproduce-fig2 \
#   FIG2_TASKS="glue/rte ..." \
#   FIG2_ARGS="model=roberta-base model.pretrained=true trainer.max_epochs=10 optim.lr=1e-4"
FIG2_TASKS ?= glue/stsb:1000:6 glue/sst2:1000
FIG2_SEEDS ?= 42,43,44
FIG2_ARGS ?=

.PHONY: help install test test-all lint format clean reproduce-table1 reproduce-table2 \
	reproduce-table3 reproduce-efficiency reproduce-fig2 reproduce-sharing reproduce-fusion \
	reproduce-methods tables figures check-data check-failures gpu-bundle smoke-gpu

help: ## List the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-22s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv with torch and the package (editable, dev extras)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -z "$(TORCH_INDEX)" ] && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then \
		echo "warning: nvidia-smi lists a GPU but TORCH_INDEX is empty, so $(TORCH_SPEC) comes" \
			"from the default indexes (here a CPU wheel). For a CUDA build: make install" \
			"TORCH_INDEX=https://download.pytorch.org/whl/cu124 TORCH_SPEC=torch==2.6.0" >&2; \
	fi
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX) )"$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip check
	@touch $@

test: install ## Fast test suite (CPU, a few minutes)
	$(PY) -m pytest -m "not slow" -q

test-all: install ## All tests, slow end-to-end ones included
	$(PY) -m pytest -q

lint: install ## ruff lint and format check
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts

format: install ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix src tests scripts
	$(VENV)/bin/ruff format src tests scripts

reproduce-table2: install ## Table 2: speed-up per shared layer, 2/4/8/16 tasks in Parallel
	$(BENCH) bench=table2 $(ARGS)

reproduce-table1: install ## Table 1: adapter vs full fine-tuning, training and inference speed
	$(BENCH) bench=table1 $(ARGS)

reproduce-table3: install ## Table 3: AdapterFusion cost and pruning
	$(BENCH) bench=table3 $(ARGS)

reproduce-efficiency: install ## Robust drop, specialized drop, CoDA, AdapterBias, LoRA, multi-task FT
	$(BENCH) bench=efficiency $(ARGS)

reproduce-fig2: install ## Fig. 2: score vs dropped layers, standard/robust/specialized, 3 seeds (trains)
	@for spec in $(FIG2_TASKS); do \
		task=$${spec%%:*}; limit=; epochs=; \
		case $$spec in *:*:*) epochs=trainer.max_epochs=$${spec##*:}; spec=$${spec%:*};; esac; \
		case $$spec in *:*) limit=data.limit_examples=$${spec#*:};; esac; \
		$(TRAIN) -m experiment=fig2_standard,fig2_robust data=$$task $$limit $$epochs \
			seed=$(FIG2_SEEDS) skip_measured=true $(FIG2_ARGS) $(ARGS) && \
		$(TRAIN) -m experiment=fig2_specialized data=$$task $$limit $$epochs \
			seed=$(FIG2_SEEDS) skip_measured=true $(FIG2_ARGS) $(ARGS) || exit 1; \
	done
	$(PY) -m adapterdrop.reporting --only fig2

# Cross-layer sharing (the paper's appendix) on this CPU, as conf/experiment/sharing.yaml sets
# it: MiniLM-L6, 3 epochs, one seed; per task a standard adapter and one shared across layers at
# rf 4/3, 4 and 16: 12 training runs on seeded subsets (task:examples sets data.limit_examples
# for every split; the dev splits, 1500/872/408 examples, stay whole). 9 min on a 2-core Xeon
# with AMX in bf16; on 2 AVX2 cores in fp32, with random batches, about 2 h 20 min while other
# jobs shared the cores (about 5 min per MRPC run with the machine to itself). The paper's
# setting: see the file's comment (SHARING_ARGS).
SHARING_TASKS ?= glue/stsb:1500 glue/sst2:3000 glue/mrpc:1500
SHARING_ARGS ?=
reproduce-sharing: install ## Appendix: one adapter shared across layers (rf 1.33/4/16) vs standard (trains)
	@for spec in $(SHARING_TASKS); do \
		task=$${spec%%:*}; limit=; case $$spec in *:*) limit=data.limit_examples=$${spec#*:};; esac; \
		$(TRAIN) -m experiment=sharing data=$$task $$limit skip_measured=true \
			$(SHARING_ARGS) $(ARGS) && \
		$(TRAIN) -m experiment=sharing sweep=train/sharing data=$$task $$limit \
			$(SHARING_ARGS) $(ARGS) || exit 1; \
	done
	$(PY) -m adapterdrop.reporting --only sharing

# AdapterFusion on this CPU, as conf/experiment/fusion.yaml sets it: 8 single-task adapters
# (trained once, reused), a fusion per target task (SST-2, STS-B), pruned to k = 1..8 and with
# fusion layers dropped, scored without retraining. 6 min on a 2-core Xeon with AMX in bf16;
# on one thread of 2 shared AVX2 cores in fp32, with random batches: the adapters with RTE and
# CoLA fusions 95 min, then the SST-2 and STS-B fusions reusing them 21 min. The paper's
# targets RTE and CoLA stay at their majority class on MiniLM-L6: FUSION_TASKS=glue/rte,glue/cola.
# The paper's setting: see the file's comment (FUSION_ARGS).
FUSION_TASKS ?= glue/sst2,glue/stsb
FUSION_ARGS ?=
reproduce-fusion: install ## AdapterFusion: score vs pruned adapters k and dropped fusion layers n (trains)
	$(TRAIN) -m experiment=fusion data=$(FUSION_TASKS) skip_measured=true $(FUSION_ARGS) $(ARGS)
	$(PY) -m adapterdrop.reporting --only fusion

# The methods frontier on this CPU, as conf/experiment/methods.yaml sets it: 8 methods (full
# fine-tuning, Pfeiffer, Houlsby, AdapterBias with and without LayerNorms, CoDA r = 3 and 5,
# LoRA) x 5 tasks on seeded 1000-example subsets of every split, 3 epochs: 40 training runs,
# then multi-task full fine-tuning of the same tasks as one model (data=multitask): one run.
# Other tasks: METHODS_TASKS=glue/rte,superglue/cb; the paper-size setting: see the file's
# comment.
METHODS_TASKS ?= glue/stsb,glue/rte,glue/sst2,superglue/wic,superglue/multirc
METHODS_ARGS ?=
reproduce-methods: install ## Methods frontier: score, parameters, step time, time to best (trains)
	$(TRAIN) -m experiment=methods data=$(METHODS_TASKS) skip_measured=true $(METHODS_ARGS) $(ARGS)
	$(TRAIN) experiment=methods method=full data=multitask 'data.tasks=[$(METHODS_TASKS)]' \
		skip_measured=true $(METHODS_ARGS) $(ARGS)
	$(PY) -m adapterdrop.reporting --only methods

train: install ## One training run or sweep in .venv: make train ARGS="-m sweep=train/layers ..."
	$(TRAIN) $(ARGS)

bench: install ## One benchmark run or sweep in .venv: make bench ARGS="-m sweep=bench/tasks"
	$(BENCH) $(ARGS)

# W&B report of a project, one section per paper artefact (scripts/wandb_report.py -h); needs
# the runs synced and W&B online: WANDB_MODE=online make report REPORT_ARGS="--entity <you>"
REPORT_ARGS ?=
report: install ## W&B report, a section per paper artefact (offline: says what to sync first)
	$(PY) scripts/wandb_report.py $(REPORT_ARGS)

check-data: install ## Parse every task in ADAPTERDROP_DATA_DIR (default ../shared/data), print counts
	$(PY) scripts/check_data.py $(ADAPTERDROP_DATA_DIR)

# Every malformed input refused loudly (scripts/malformed_inputs.py -h): 47 bench, train, eval
# and check-data command lines on the tiny model and bad copies of RTE in a temporary folder, a
# markdown table of exit code, first error line and what each wrote; fails if any exits 0.
check-failures: install ## Run the malformed-input battery (about 11 min)
	$(PY) scripts/malformed_inputs.py

tables: install ## Rebuild every table (each machine's, machines compared, training) and results.csv from results only
	$(PY) -m adapterdrop.reporting

figures: install ## Every artefact's figure from the built tables (notebooks/, headless) to results/figures/
	$(PY) -m adapterdrop.reporting.notebooks

gpu-bundle: install ## Wheels for an offline GPU machine (CPython 3.12) into gpu-bundle/ (max 64 MiB)
	PY=$(PY) bash scripts/gpu_bundle.sh

# With gpu-bundle/ and no .venv (the offline GPU machine), the script builds .venv-gpu from the
# bundle over the machine's own python3 (and its CUDA torch); otherwise it runs in .venv.
smoke-gpu: ## Tiny grid of every benchmark + a few steps per method (1 GPU; CPU if none), <= 5 min
	@if [ -d gpu-bundle ] && [ ! -x "$(PY)" ]; then \
		$(PYTHON) scripts/smoke_gpu.py $(SMOKE_ARGS); \
	else \
		$(MAKE) --no-print-directory install && $(PY) scripts/smoke_gpu.py $(SMOKE_ARGS); \
	fi

clean: ## Remove the virtualenv, caches and Hydra outputs (results/ is kept)
	rm -rf $(VENV) .pytest_cache .ruff_cache outputs multirun
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
