# mmdgpp: two commands.
#   make quickstart   set up .venv (first time) and run the quickstart
#   make test         set up .venv (first time) and run every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mmdgpp-complete
# The torch/torchvision pair is pinned here (not in pyproject.toml): it is the pair that works with
# open_clip on CPU machines and on CUDA 13 GPUs. Other CUDA builds: see README, "Other torch builds".
TORCH  ?= torch==2.14.1 torchvision==0.29.1
export HF_HUB_OFFLINE ?= 1
export PYTHONHASHSEED := 0

.PHONY: install quickstart test test-notebooks test-sync test-pytest readme docs notebooks clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet $(TORCH) -e '.[dev]'
	$(BIN)/python -c "import torch, torchvision, open_clip, nbdev, papermill, captum, ipywidgets, seaborn"
	touch $(STAMP)

quickstart: install
	$(BIN)/mmdgpp quickstart

# notebooks and package in sync, README in sync, notebook tests, the docs site, then pytest (its summary line is last)
test: install test-sync test-notebooks docs test-pytest

test-sync: install
	@before="$$(git status --porcelain | sort)"; \
	$(BIN)/nbdev-clean >/dev/null && $(BIN)/nbdev-export >/dev/null; \
	after="$$(git status --porcelain | sort)"; \
	if [ "$$before" != "$$after" ]; then echo "nbdev-clean/nbdev-export changed files: notebooks and mmdgpp/ are out of sync"; git status --short; exit 1; fi
	@echo "notebooks, package: in sync"

# each notebook in a process of its own, two at a time (as in Jupyter, one kernel per notebook): notebooks whose
# exported cells register classes would otherwise leave their own copies in the registries that the next notebook
# run by the same worker process reads
test-notebooks: install
	ls nbs/*.ipynb | OMP_NUM_THREADS=1 xargs -P 2 -n 1 $(BIN)/nbdev-test --timing

test-pytest: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q tests

readme: install
	$(BIN)/python -m mmdgpp.docs readme

# the documentation site from the notebooks' committed outputs (nothing executed) into _docs/site;
# fails on any mkdocs warning, broken link or anchor, or resource loaded from the network
docs: install
	$(BIN)/python -m mmdgpp.docs site

# re-execute the method notebooks in place (seeded, CPU defaults, one kernel at a time), then clean them:
# the one command that regenerates their committed outputs. NBS="nbs/a.ipynb nbs/b.ipynb" for a subset;
# `#| slow` cells keep their outputs unless FLAGS=slow.
NBS ?=
FLAGS ?=
notebooks: install
	OMP_NUM_THREADS=1 $(BIN)/python -m mmdgpp.docs execute $(if $(FLAGS),--flags $(FLAGS)) $(NBS)
	$(BIN)/nbdev-clean

clean-venv:
	rm -rf $(VENV)
