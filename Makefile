# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
VENV := .venv
BENCH := $(VENV)/bin/bench
PYTEST_ARGS ?= -n 2

.PHONY: setup demo test clean-demo

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

demo: setup
	$(BENCH) grid --encoders scratch --heads all --seeds 1 --epochs 6 --results results/demo
	$(BENCH) leaderboard --results results/demo

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean-demo:
	rm -rf results/demo
