# Two entry points for a newcomer: `make run` (set up, run the five trusts) and `make test`.
PYTHON ?= $(shell command -v python3.12 >/dev/null 2>&1 && python3.12 -c 'import sys' 2>/dev/null && echo python3.12 || ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | tail -n 1)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 not found: install it or run 'make PYTHON=/path/to/python3.12'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# The calibrated answer (an ensemble over the shipped posterior: the fit report's 100 draws at full scale, with its
# figures), then one full-scale run at the documented default parameters, its figures marked uncalibrated.
run: setup
	@echo "== 1/2 the calibrated answer: 100 posterior draws x 5 trusts at full scale -> results/ensemble/"
	$(BIN)/orgsim run --all --posterior calibration/posterior_main.csv --draws 100 --scale 1.0 --seed 1 --workers 2 --out results/ensemble
	@echo "== 2/2 one illustrative run at the default (uncalibrated) parameters -> results/latest/"
	$(BIN)/orgsim run --all --out results/latest
	@echo "== done: results/ensemble/ (trajectories.png, cqc_trajectories.png, fit_targets.png, ensemble_summary.json)"

test: setup
	$(BIN)/pytest

bench: setup
	$(BIN)/python benchmarks/bench_model.py

clean:
	rm -rf $(VENV) results/* build *.egg-info
