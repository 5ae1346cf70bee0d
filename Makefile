# Two entry points for a newcomer: `make run` (set up, run the five trusts) and `make test`.
PYTHON ?= $(shell command -v python3.12 >/dev/null 2>&1 && python3.12 -c 'import sys' 2>/dev/null && echo python3.12 || ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | tail -n 1)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test bench clean readiness-examples calibration calibration-census calibration-next calibration-next-full calibration-next-report calibration-history app

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 not found: install it or run 'make PYTHON=/path/to/python3.12'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m sim.kernels    # compile the numba kernels once, into their disk cache
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

# The local web app (what-if, readiness, one run live, results): http://127.0.0.1:8765/ (docs/app.md)
app: setup
	$(BIN)/orgsim app

bench: setup
	$(BIN)/python benchmarks/bench_model.py

# The shipped calibration (docs/calibration.md), in blocks: first the census blocks (each trust's L4L paces
# against its L4L censuses, calibration/census/), whose posteriors, once converged, truncate the paces' priors in
# calibration/priors.yaml (orgsim calibrate-truncate), then the main calibration. Each is ABC-SMC, resumable (run it
# again to continue from its database; it stops when converged or at --max-minutes), its posterior exported into
# the repository; then its best particles re-run on fresh seeds (orgsim calibrate-noise: epsilon against the model's
# noise, calibration/noise/), the evaluation's causal claims over 50 posterior draws x 4 seeds at full scale
# (orgsim validate, calibration/validate/) and the fit report over 100 posterior draws at full scale (with those,
# and the pipeline's simulation-based calibration check, calibration/sbc/), copied into calibration/report_main/.
# Machines are not kept between sessions, so a run's history (pyabc database, setup, generations) is archived in
# calibration/history/NAME.tar.gz when it stops and restored from there when results/ has none: `make calibration`
# on a fresh clone resumes it.
CENSUS_ARGS ?= --priors calibration/census/priors.yaml --fit l4l --scale 0.5 --population 150 \
	--converge 0.05 --posterior-tol 0.1 --max-minutes 10 --workers 2
CALIBRATION_ARGS ?= --scale 1.0 --population 200 --replicates 1 --converge 0.05 --posterior-tol 0.1 --max-minutes 105 --workers 2
# $(call calibrate,NAME,ARGS,POSTERIOR_DIR): restore NAME's history if results/ has none, run or resume, archive
define calibrate
	@if [ ! -f results/calibration/$(1)/abc.db ] && [ -f calibration/history/$(1).tar.gz ]; then \
	  echo "== restoring the calibration's history from calibration/history/$(1).tar.gz"; \
	  mkdir -p results/calibration/$(1) && tar -xzf calibration/history/$(1).tar.gz -C results/calibration/$(1) && \
	  if [ -d calibration/history/$(1)_simulations ]; then mkdir -p results/calibration/$(1)/simulations && \
	    cp calibration/history/$(1)_simulations/generation_*.csv.gz results/calibration/$(1)/simulations/; fi; fi
	status=0; $(BIN)/orgsim calibrate --name $(1) $(2) --posterior-dir $(3) --no-report \
	  $$(test -f results/calibration/$(1)/abc.db && echo --resume) || status=$$?; \
	  if [ -f results/calibration/$(1)/abc.db ]; then $(call archive,$(1)); fi; exit $$status
endef
# The parts that change (database, saved jobs) go into NAME.tar.gz; each stored generation's kept simulations never
# change once written, so they are copied as files of their own (NAME_simulations/), which git stores once.
archive = mkdir -p calibration/history && tar -czf calibration/history/$(1).tar.gz -C results/calibration/$(1) \
	$$(cd results/calibration/$(1) && ls -d abc.db setup.json scenarios.json generations.csv scale_weights.json generation noise \
	  noise_floor.json noise_floor.md 2>/dev/null) && \
	if ls results/calibration/$(1)/simulations/generation_*.csv.gz > /dev/null 2>&1; then \
	  rm -rf calibration/history/$(1)_simulations.new && mkdir -p calibration/history/$(1)_simulations.new && \
	  cp -p results/calibration/$(1)/simulations/generation_*.csv.gz calibration/history/$(1)_simulations.new/ && \
	  rm -rf calibration/history/$(1)_simulations && mv calibration/history/$(1)_simulations.new calibration/history/$(1)_simulations; fi
# one census block per trust (its paces depend on its own censuses only): census_SASH, census_LTHT, ...
define census_block
$(call calibrate,census_$(1),--trusts $(1) $(CENSUS_ARGS),calibration/census)

endef
calibration-census: setup
	$(foreach trust,SASH LTHT UHCW SATH BHRUT,$(call census_block,$(trust)))
calibration: setup
	$(call calibrate,main,$(CALIBRATION_ARGS),calibration)
	$(BIN)/orgsim calibrate-noise --name main --workers 2
	mkdir -p calibration/noise
	cp results/calibration/main/noise_floor.json results/calibration/main/noise_floor.md calibration/noise/
	rm -rf results/calibration/validate     # a batch folder refuses another posterior's runs
	$(BIN)/orgsim validate --posterior calibration/posterior_main.csv --sets 50 --replicates 4 --workers 2 \
	  --out results/calibration/validate
	mkdir -p calibration/validate
	cd results/calibration/validate && cp validate.csv validate.json validate.md validate.png ../../../calibration/validate/
	$(BIN)/orgsim report calibration/posterior_main.csv --draws 100 --scale 1.0 --workers 2 \
	  --noise calibration/noise/noise_floor.json --sbc calibration/sbc --validate calibration/validate \
	  --out results/calibration/report_main
	mkdir -p calibration/report_main
	cp results/calibration/report_main/report.md results/calibration/report_main/*.png \
	  results/calibration/report_main/ensemble/ensemble_summary.json calibration/report_main/

# The calibration under way (docs/calibration.md, "Calibration r3 in two stages"): its own targets and priors
# (calibration/next/). Stage 1, r3_outcomes: every fitted family but the survey, at scale 0.5 (half a full-scale
# particle's cost; the survey is comparable only at full scale). Once it converges, `orgsim calibrate-truncate
# results/calibration/r3_outcomes/posterior_r3_outcomes.csv --onto calibration/next/priors.yaml --out
# calibration/next/priors_truncated.yaml` writes stage 2's priors, and stage 2, r3_full, fits every target at full
# scale. Each resumes from calibration/history/NAME.tar.gz; its posterior stays in results/ until it ships.
# Stage 1 only bounds the region stage 2 starts from (the span of its particles, not their weights), so its ESS floor
# is 20 of 200, against a population carried by a few particles; the default, half the population, is for a
# posterior that ships (docs/calibration.md, "Generation 3 of stage 1"). Stage 2's floor is 50 of 200: stage 1's
# generations kept 24-37% of their particles as ESS, so half the population is out of reach at 200 particles
# (docs/calibration.md, "Stage 1 ends at generation 3"). From generation 3 on, stage 2 also stops once epsilon is
# inside the model's noise (--noise-floor: docs/calibration.md, "The noise floor as a stopping rule"). r3_full narrowed
# its proposal kernel to 1.0 from generation 4, as stage 1 had ("Generation 3: a narrower kernel"); r4_full starts
# at the default width, to be narrowed once its population has moved.
NEXT_FAMILIES := cqc,l4l,rpiws,value_streams,lead_time
NEXT_OUTCOMES_ARGS ?= --targets calibration/next/targets.yaml --priors calibration/next/priors.yaml \
	--fit $(NEXT_FAMILIES) --scale 0.5 --population 200 --replicates 2 --converge 0.05 --posterior-tol 0.1 \
	--min-ess 20 --max-minutes 105 --workers 2
# Stage 2 is r4_full since 28 November: r3_full's priors with model v2.3's two new parameters freed
# (calibration/next/priors_r4.yaml; docs/calibration.md, "Stage 2 starts again as r4"). r3_full stopped after its
# generation 3 and stays archived (calibration/history/r3_full*), resumable with NEXT_FULL_NAME=r3_full
# NEXT_FULL_PRIORS=calibration/next/priors_truncated.yaml (its setup.json keeps its kernel width).
NEXT_FULL_NAME ?= r4_full
NEXT_FULL_PRIORS ?= calibration/next/priors_r4.yaml
NEXT_FULL_ARGS ?= --targets calibration/next/targets.yaml --priors $(NEXT_FULL_PRIORS) --scale 1.0 --population 200 \
	--replicates 2 --converge 0.05 --posterior-tol 0.1 --min-ess 50 --noise-floor 5 --noise-seeds 6 \
	--max-minutes 105 --workers 2
calibration-next: setup
	$(call calibrate,r3_outcomes,$(NEXT_OUTCOMES_ARGS),results/calibration/r3_outcomes)
calibration-next-full: setup
	@test -f $(NEXT_FULL_PRIORS) || { echo "calibration-next-full: $(NEXT_FULL_PRIORS) is not written yet: it comes \
	from stage 1 once converged (make calibration-next; then orgsim calibrate-truncate, as the Makefile says)"; exit 1; }
	$(call calibrate,$(NEXT_FULL_NAME),$(NEXT_FULL_ARGS),results/calibration/$(NEXT_FULL_NAME))
	@# where it stands, and its leave-one-trust-out posteriors from its kept simulations, refreshed (seconds)
	$(BIN)/orgsim calibrate-progress $(NEXT_FULL_NAME) > /dev/null
	-$(BIN)/orgsim calibrate-loto $(NEXT_FULL_NAME)

# Once stage 2 has converged (or of its interim posterior, which the report marks so), everything a referee asks of
# it, in results/calibration/$(NEXT_FULL_NAME)/ (shipping it is a decision, docs/calibration.md): epsilon against the model's
# noise, the causal claims over 50 posterior draws x 4 seeds, the five leave-one-trust-out posteriors from its own
# simulations (orgsim calibrate-loto: no new calibration) and the fit report over 100 draws at full scale with every
# diagnostic. A few hours on two cores.
NEXT_FULL_DIR := results/calibration/$(NEXT_FULL_NAME)
calibration-next-report: setup
	@test -f $(NEXT_FULL_DIR)/posterior_$(NEXT_FULL_NAME).csv || { echo "calibration-next-report: \
	$(NEXT_FULL_DIR)/posterior_$(NEXT_FULL_NAME).csv is not written yet (make calibration-next-full)"; exit 1; }
	$(BIN)/orgsim calibrate-noise --name $(NEXT_FULL_NAME) --workers 2
	rm -rf $(NEXT_FULL_DIR)/validate     # a batch folder refuses another posterior's runs
	$(BIN)/orgsim validate --posterior $(NEXT_FULL_DIR)/posterior_$(NEXT_FULL_NAME).csv --sets 50 --replicates 4 --workers 2 \
	  --out $(NEXT_FULL_DIR)/validate
	$(BIN)/orgsim calibrate-loto $(NEXT_FULL_NAME)
	$(BIN)/orgsim report $(NEXT_FULL_DIR)/posterior_$(NEXT_FULL_NAME).csv --draws 100 --loto-draws 40 --scale 1.0 --workers 2 \
	  --loto $(NEXT_FULL_DIR)/loto/posterior_loto_*.csv --noise $(NEXT_FULL_DIR)/noise_floor.json \
	  --sbc calibration/sbc --validate $(NEXT_FULL_DIR)/validate --out $(NEXT_FULL_DIR)/report

# Archive a calibration's history (also after one that was killed: its finished generations); CALIBRATION_NAME=main
# by default (not NAME, which some environments set to the host's name).
CALIBRATION_NAME ?= main
calibration-history:
	@test -f results/calibration/$(CALIBRATION_NAME)/abc.db || { echo "calibration-history: no results/calibration/$(CALIBRATION_NAME)/abc.db to archive"; exit 1; }
	$(call archive,$(CALIBRATION_NAME))

# The shipped readiness reports (docs/readiness/): the three example profiles of scenarios/readiness/ over the shipped
# calibration (about 3 minutes each on two cores); READINESS_POSTERIOR=defaults runs them at the default parameters.
READINESS_POSTERIOR ?= calibration/posterior_main.csv
READINESS_EXAMPLES := receptive_trust unstable_regulatory_action small_no_improvement_team
READINESS_FILES := report.html report.pdf report.md profile.png network.png trajectory.png contributions.png \
	ratings.png levers.png effects.csv ratings.csv dimensions.csv nearest.csv manifest.json
readiness-examples: setup
	@for example in $(READINESS_EXAMPLES); do \
	  echo "== $$example"; \
	  rm -rf results/readiness/$$example; \
	  $(BIN)/orgsim readiness scenarios/readiness/$$example.yaml --posterior $(READINESS_POSTERIOR) --workers 2 \
	    --out results/readiness/$$example || exit 1; \
	  mkdir -p docs/readiness/$$example; \
	  for file in $(READINESS_FILES); do cp results/readiness/$$example/$$file docs/readiness/$$example/ || exit 1; done; \
	done

clean:
	rm -rf $(VENV) results/* build *.egg-info
