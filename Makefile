# Two commands on a fresh machine: `make demo` and `make test`. Both (re)use .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.openmia-installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU wheel first: a wider torch requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	# everything: training, the test references, and every optional engine (readers, classical
	# baselines, RL, Ray, MLflow), so that every test runs
	$(BIN)/python -m pip install -q -e '.[train,test,io,classical,rl,ray,mlflow]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/openmia quickstart

test: $(STAMP)
	$(BIN)/python -m pytest -q
	# the scale-out checks against real engines (Ray, an MLflow server, headless Chromium): they
	# train small suites, so they are marked slow and run here on their own (a few minutes)
	$(BIN)/python -m pytest -q -m slow tests/bench/test_suite_run.py tests/bench/test_suite_tracking.py

clean:
	rm -rf $(VENV) build src/*.egg-info
