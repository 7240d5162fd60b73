# Two commands do everything on a fresh Debian machine:
#   make bench   set up, run the CPU benchmark (4 tuned optimizers x 5 seeds), print the leaderboard
#   make test    set up, lint (ruff, mypy), run every test
# While developing: make test-fast (the tests not marked slow, about 2 minutes), make lint.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RESULTS ?= results/results.db
SEEDS ?= 0-4
SUBMISSIONS ?= nesterov lars adamw lamb
WORKLOAD ?= fashion_mnist_resnet
# Each submission's hyperparameters: submissions/<s>/configs/$(CONFIG).json, the point its tuning study
# selected (issue 15, docs/studies/); `make bench CONFIG=` runs the submissions' defaults instead.
CONFIG ?= fashion_mnist_resnet_tuned

.PHONY: setup data bench test test-fast lint leaderboard clean

setup: $(VENV)/.installed data

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,fullscale,tensorboard,ray]'
	touch $@

data:
	@scripts/install_data.sh

bench: setup
	@mkdir -p $(dir $(RESULTS))
	@for s in $(SUBMISSIONS); do \
	  $(PY) -m harness run --workload=$(WORKLOAD) --submission=$$s $(if $(CONFIG),--config=$(CONFIG)) \
	    --seeds=$(SEEDS) --results=$(RESULTS) || exit $$?; \
	done
	$(PY) -m scoring leaderboard --workload=$(WORKLOAD) --results=$(RESULTS) --out=results/leaderboard

leaderboard: setup
	$(PY) -m scoring leaderboard --results=$(RESULTS) --out=results/leaderboard

test: setup lint
	$(PY) -m pytest -q tests

test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

clean:
	rm -rf $(VENV) results
