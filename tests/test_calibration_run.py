"""Running calibrations: on a Dask LocalCluster, killed and resumed, parameter recovery, ensemble, report.

Everything runs at a tiny scale, on two trusts and a horizon cut at January 2019, with small
populations; still the costliest file of the suite (about six CPU-minutes), so tests that only read a
calibration share one (`two_generations`).
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pyabc.weighted_statistics import weighted_quantile

from sim.calibration.ensemble import run_posterior_ensemble
from sim.calibration.known_misses import Check, KnownMisses, load_known_misses
from sim.calibration.posterior import load_posterior
from sim.calibration.report import CHECK_COLUMNS, checks_met, missed_check_rows, write_fit_report
from sim.calibration.priors import split_particle
from sim.calibration.simulation import COMPONENT_PREFIX, CalibrationModel, particle_key, simulate_trusts
from sim.calibration.smc import CalibrationSetup, StoppingRules, _run_abc, calibrate, predicted_next_generation_seconds
from sim.calibration.targets import cross_trust_components, load_targets, simulated_statistics
from sim.errors import InputError
from sim.params import default_params

TRUSTS = ["SASH", "SATH"]
END = "2019-01-01"
SCALE = 0.05
STATISTICS = [("l4l_complete_2021_03", "count"), ("l4l_in_progress_2021_03", "count"),
              ("rpiws_2019_07", "count"), ("lead_time_reduction", "ratio")]


def write_targets(path: Path, observed: dict[str, dict[str, float]]) -> Path:
    targets = [{"trust": trust, "statistic": statistic, "kind": kind, "observed": float(observed[trust][statistic]),
                "source": "test", "weight": 1.0, "role": "fitted"} for trust in observed for statistic, kind in STATISTICS]
    path.write_text(yaml.safe_dump({"targets": targets}))
    return path


def write_priors(path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "shared": {"rpiw_effect": {"low": 0.3, "high": 1.0, "why": "test"},
                   "dropout_per_module": {"low": 0.0, "high": 0.3, "why": "test"}},
        "per_trust": {"programme.rpiws_per_year": {"SASH": [2, 12], "why": "test"}},
    }))
    return path


def simulate_observed(params: dict, seed: int, trusts=TRUSTS) -> dict:
    import datetime as dt

    return simulate_trusts(params, {}, trusts, base_seed=seed, run_index=0, scale=SCALE,
                           end=dt.date.fromisoformat(END))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibration-inputs")
    observed = simulate_observed(default_params(), seed=7)
    return {"targets": write_targets(folder / "targets.yaml", observed),
            "priors": write_priors(folder / "priors.yaml")}


def setup_for(inputs, name, population=12, seed=3, trusts=TRUSTS) -> CalibrationSetup:
    return CalibrationSetup(name=name, targets_path=str(inputs["targets"]), priors_path=str(inputs["priors"]),
                            scale=SCALE, population_size=population, seed=seed, end=END, trusts=list(trusts))


SHARED = "two_generations"


@pytest.fixture(scope="module")
def two_generations(inputs, tmp_path_factory) -> Path:
    """The results folder of one two-generation calibration, run once for the tests that read one (a calibration is
    the costliest thing in this file); a test that writes into it works on its own copy (`copy_of`)."""
    root = tmp_path_factory.mktemp(SHARED)
    calibrate(setup_for(inputs, SHARED), StoppingRules(generations=2), workers=1, results_root=root / "results",
              posterior_dir=root / "posterior")
    return root / "results"


def copy_of(results: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(results, tmp_path / "results"))


def test_a_calibration_in_blocks_fits_only_the_families_it_names(inputs, tmp_path):
    import pyabc

    setup = setup_for(inputs, "block")
    setup.fit_families = ["rpiws"]
    posterior_csv = calibrate(setup, StoppingRules(generations=1), workers=1, results_root=tmp_path / "results",
                              posterior_dir=tmp_path / "posterior")
    history = pyabc.History(f"sqlite:///{tmp_path / 'results' / 'block' / 'abc.db'}")
    assert set(history.observed_sum_stat()) == {"SASH.rpiws_2019_07", "SATH.rpiws_2019_07"}
    assert load_posterior(posterior_csv).manifest["fitted_families"] == ["rpiws"]


def test_calibration_through_a_dask_local_cluster(inputs, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        posterior_csv = calibrate(setup_for(inputs, "dask"), StoppingRules(generations=2),
                                  scheduler=cluster.scheduler_address, results_root=tmp_path / "results",
                                  posterior_dir=tmp_path / "posterior")
    posterior = load_posterior(posterior_csv)
    manifest = posterior.manifest
    assert len(posterior.frame) == 12
    assert posterior.weights.sum() == pytest.approx(1.0)
    assert manifest["generations"] == 2 and manifest["final_epsilon"] > 0
    assert manifest["stopped_because"] == "a stopping rule was met after 2 generation(s) in this run"
    assert manifest["status"] == "interim: not converged (a stopping rule was met after 2 generation(s) in this run)"
    assert "DaskDistributedSampler" in manifest["sampler"]
    assert manifest["trusts_calibrated"] == TRUSTS and manifest["git_commit"]
    assert set(posterior.free_columns()) == {"rpiw_effect", "dropout_per_module", "SASH.programme.rpiws_per_year"}
    assert posterior.frame["SASH.programme.rpiws_per_year"].between(2, 12).all()
    assert (posterior.frame["turnover_rate"] == default_params()["turnover_rate"]).all()  # fixed ones constant


class _PretendABC:
    """Generations that take the given (pretend) seconds on a pretend clock; pyabc's own rules
    stop it only after the last one."""

    def __init__(self, seconds: list[float]):
        self.seconds, self.now, self.rows = seconds, 0.0, []
        self.history = self

    def get_all_populations(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["t", "wall_time"])

    def initialize_components_before_run(self, **rules) -> int:
        return 0

    def run_generation(self, t: int) -> dict:
        self.now += self.seconds[t]
        self.rows.append({"t": t, "wall_time": self.seconds[t]})
        return {"successful": True, "acceptance_rate": 0.5}

    def check_terminate(self, t: int, acceptance_rate: float) -> bool:
        return t + 1 == len(self.seconds)


def test_no_generation_starts_that_would_end_after_the_wall_time_limit():
    assert predicted_next_generation_seconds([]) is None
    assert predicted_next_generation_seconds([60, 120]) == 240        # grows as the last one grew
    assert predicted_next_generation_seconds([120, 60]) == 60         # never predicted shorter
    doubling = [60.0, 120.0, 240.0, 480.0]                            # ends at 60, 180, 420, 900 s
    abc = _PretendABC(doubling)
    _, why = _run_abc(abc, StoppingRules(max_walltime_minutes=10), started=0.0, clock=lambda: abc.now)
    assert len(abc.rows) == 3 and abc.now == 420      # the fourth would have ended at 900 s > 600 s
    assert why.startswith("the next generation would take about 8.0 min")
    abc = _PretendABC(doubling)
    _, why = _run_abc(abc, StoppingRules(max_walltime_minutes=16), started=0.0, clock=lambda: abc.now)
    assert len(abc.rows) == 4 and why == "a stopping rule was met after 4 generation(s) in this run"


def _generations_in(db: Path) -> int:
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("select count(*) from populations where t >= 0").fetchone()[0]
    except sqlite3.Error:
        return 0


def _calibrate_command(inputs, tmp_path, *extra) -> list[str]:
    return [sys.executable, "-m", "sim.cli", "calibrate", "--name", "killed", "--targets", str(inputs["targets"]),
            "--priors", str(inputs["priors"]), "--scale", str(SCALE), "--population", "12", "--workers", "1",
            "--trusts", ",".join(TRUSTS), "--end", END, "--results", str(tmp_path / "results"),
            "--posterior-dir", str(tmp_path / "posterior"), "--no-report", *extra]


def test_a_killed_calibration_keeps_its_generations_and_resumes(inputs, tmp_path):
    db = tmp_path / "results" / "killed" / "abc.db"
    process = subprocess.Popen(_calibrate_command(inputs, tmp_path, "--generations", "50"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while _generations_in(db) < 1 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)       # in the middle of the next generation, most likely
        process.wait()
    finished = _generations_in(db)
    assert finished >= 1, "the calibration should have finished a generation before the kill"
    exported = subprocess.run(_calibrate_command(inputs, tmp_path, "--export"), capture_output=True, text=True,
                              timeout=120)
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads((tmp_path / "posterior" / "posterior_killed.manifest.json").read_text())
    assert manifest["generations"] == finished  # the finished generations are usable as they are
    resumed = subprocess.run(_calibrate_command(inputs, tmp_path, "--resume", "--generations", "1"),
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "calibrate: t:" in resumed.stderr  # progress per generation
    assert _generations_in(db) == finished + 1
    manifest = json.loads((tmp_path / "posterior" / "posterior_killed.manifest.json").read_text())
    assert manifest["generations"] == finished + 1
    assert manifest["stopped_because"] == "a stopping rule was met after 1 generation(s) in this run"


def test_a_terminated_calibration_records_its_wall_time(inputs, tmp_path):
    db, setup = tmp_path / "results" / "killed" / "abc.db", tmp_path / "results" / "killed" / "setup.json"
    process = subprocess.Popen(_calibrate_command(inputs, tmp_path, "--generations", "50"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 90
    while _generations_in(db) < 1 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.terminate()              # SIGTERM to the calibration alone, as `kill PID` does
    assert process.wait(timeout=60) == 130
    assert json.loads(setup.read_text())["wall_time_seconds"] > 0


def _worker_with_unread_results(queue, ready):
    for _ in range(8):
        queue.put(b"x" * 100_000)        # more than a pipe holds, and the parent is no longer reading
    ready.set()
    time.sleep(60)


def test_a_terminated_calibration_s_workers_die_at_once():
    """pyabc's forked workers inherit the calibration's SIGTERM handler. One that raised instead of dying would wait,
    on its way out, to flush results nobody reads, and the ending calibration waits for its workers (CI hung so)."""
    import multiprocessing

    from sim.calibration.smc import TerminateAsInterrupt

    previous = signal.signal(signal.SIGTERM, TerminateAsInterrupt(os.getpid()))
    try:
        context = multiprocessing.get_context("fork")
        queue, ready = context.Queue(), context.Event()
        worker = context.Process(target=_worker_with_unread_results, args=(queue, ready), daemon=True)
        worker.start()
        assert ready.wait(30)
        worker.terminate()                # what multiprocessing does to daemon workers when the calibration ends
        worker.join(20)
        exitcode = worker.exitcode
        if exitcode is None:
            worker.kill()
        assert exitcode == 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_sigterm_that_python_swallows_is_sent_again_until_it_ends_the_calibration():
    """A SIGTERM landing in an at-fork hook (pyabc forks every generation) raises where Python can only print
    "Exception ignored"; the calibration then ran on and CI timed out waiting for it. The handler repeats the
    signal until the interrupt is handled."""
    from sim.calibration.smc import TerminateAsInterrupt

    terminate = TerminateAsInterrupt(os.getpid())
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except KeyboardInterrupt:
            pass                          # swallowed, as in an at-fork hook
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            while time.monotonic() - started < 10:
                time.sleep(0.05)          # the calibration running on
        terminate.handled()
        assert time.monotonic() - started < 3 * TerminateAsInterrupt.REPEAT_SECONDS
        time.sleep(2 * TerminateAsInterrupt.REPEAT_SECONDS)   # handled: nothing is sent again
    finally:
        terminate.restore(previous)
    assert signal.getsignal(signal.SIGTERM) is previous


def test_parameter_recovery(tmp_path):
    """Targets simulated from known parameters are recovered: truth inside the 90% posterior interval."""
    truth = {**default_params(), "rpiw_effect": 0.55, "dropout_per_module": 0.2}
    observed = simulate_observed(truth, seed=11, trusts=["SASH"])
    inputs = {"targets": write_targets(tmp_path / "targets.yaml", observed)}
    (tmp_path / "priors.yaml").write_text(yaml.safe_dump({"shared": {
        "rpiw_effect": {"low": 0.3, "high": 1.0, "why": "test"},
        "dropout_per_module": {"low": 0.0, "high": 0.3, "why": "test"}}}))
    inputs["priors"] = tmp_path / "priors.yaml"
    posterior_csv = calibrate(setup_for(inputs, "recovery", population=30, trusts=["SASH"]), StoppingRules(generations=3),
                              workers=2, results_root=tmp_path / "results", posterior_dir=tmp_path / "posterior")
    posterior = load_posterior(posterior_csv)
    for name in ("rpiw_effect", "dropout_per_module"):
        values = posterior.frame[name].to_numpy()
        low, high = (weighted_quantile(values, posterior.weights, alpha=a) for a in (0.05, 0.95))
        assert low <= truth[name] <= high, f"{name}: truth {truth[name]} outside [{low:.3f}, {high:.3f}]"
    # and the data did narrow rpiw_effect (the lead-time reduction is informative about it)
    values = posterior.frame["rpiw_effect"].to_numpy()
    width = weighted_quantile(values, posterior.weights, alpha=0.95) - weighted_quantile(values, posterior.weights, alpha=0.05)
    assert width < 0.9 * (1.0 - 0.3)


def test_posterior_ensemble_and_fit_report(inputs, tmp_path):
    rows = pd.DataFrame([{**default_params(), "rpiw_effect": v, "SASH.programme.rpiws_per_year": r, "weight": w}
                         for v, r, w in ((0.5, 4.0, 0.2), (0.8, 8.0, 0.8))])
    posterior_csv = tmp_path / "posterior_toy.csv"
    rows.to_csv(posterior_csv, index=False)
    summary = run_posterior_ensemble(posterior_csv, TRUSTS, tmp_path / "ensemble", seed=5, workers=1, scale=SCALE,
                                     end=pd.Timestamp(END).date(), targets_path=inputs["targets"], progress=False)
    written = json.loads((tmp_path / "ensemble" / "ensemble_summary.json").read_text())
    assert written == json.loads(json.dumps(summary))
    sash = written["trusts"]["SASH"]
    assert set(sash["statistics"]["rpiws_2019_07"]) == {"q05", "q25", "median", "q75", "q95"}
    assert sash["statistics"]["rpiws_2019_07"]["q05"] <= sash["statistics"]["rpiws_2019_07"]["q95"]
    assert sum(written["trusts"]["SATH"]["cqc"]["2018"].values()) == pytest.approx(1.0)  # inspected July 2018
    assert (tmp_path / "ensemble" / "ensemble_manifest.json").is_file()
    stats = pd.read_csv(tmp_path / "ensemble" / "ensemble_statistics.csv")
    assert len(stats) == 2 and stats["weight"].sum() == pytest.approx(1.0)
    # draw 1 reproduces exactly: same parameters, same seed rule
    params, overrides = load_posterior(posterior_csv).parameter_set(1, TRUSTS)
    from sim.runner import simulate
    from sim.scenario import load_scenario
    again = simulate(load_scenario("SASH", overrides["SASH"]), params, np.random.SeedSequence(5, spawn_key=(1 * 5 + 0,)),
                     scale=SCALE, end=pd.Timestamp(END).date()).summary
    targets = load_targets(inputs["targets"])
    assert stats.loc[1, "SASH.rpiws_2019_07"] == simulated_statistics({"SASH": again}, targets)["SASH.rpiws_2019_07"]

    loto_csv = tmp_path / "posterior_loto_SATH.csv"          # as made by `calibrate --leave-out SATH`
    rows.drop(columns="SASH.programme.rpiws_per_year").to_csv(loto_csv, index=False)
    (tmp_path / "posterior_loto_SATH.manifest.json").write_text(json.dumps({"leave_out": "SATH"}))
    report = write_fit_report(posterior_csv, tmp_path / "report", workers=1, scale=SCALE, seed=5,
                              targets_path=inputs["targets"], trusts=TRUSTS, end=END, progress=False,
                              loto=[loto_csv])
    text = report.read_text()
    assert "## Acceptance checks" in text and "SASH.rpiws_2019_07" in text and "rpiw_effect" in text
    acceptance = text.split("## Acceptance checks")[1].split("## ")[0]
    assert ("**no**" in acceptance) == ("### Why the missed checks are missed" in text)
    assert "## Leave-one-trust-out: SATH predicted from the other four" in text
    every = text.split("## Leave-one-trust-out: every prediction")[1].split("## ")[0]
    assert "| SATH |" in every and "| SASH |" not in every
    assert text.count("Checks met: **") == 2                # the five trusts, and the leave-one-out predictions
    assert "SATH.lead_time_reduction" in text.split("## Leave-one-trust-out: SATH")[1]
    for png in ("fit_targets.png", "cqc_trajectories.png", "posterior_marginals.png", "posterior_correlations.png"):
        assert (tmp_path / "report" / png).stat().st_size > 1000


def test_checks_met_counts_every_acceptance_check_per_check_and_in_all():
    rows = [{"trust": "SASH", "latest ok": True, "lead_time_reduction": False},
            {"trust": "SATH", "latest ok": False, "lead_time_reduction": True, "rpiws_2019_07": True}]
    assert checks_met(rows) == ("Checks met: **3 of 5** (latest ok 1/2, lead_time_reduction 1/2, "
                                "rpiws_2019_07 1/1).")


def test_every_missed_check_gets_its_recorded_explanation_and_a_new_miss_is_named_unexplained():
    known = KnownMisses.model_validate({"misses": [
        {"trusts": ["LTHT"], "checks": ["latest_cqc", "direction"], "cause": "mechanism", "why": "no  prior\n rise"},
        {"trusts": ["SASH"], "checks": ["rpiws_2019_07"], "cause": "input", "why": "pace unpublished"}]})
    rows = [{"trust": "LTHT", "latest ok": False, "direction ok": False, "rpiws_2019_07": True},
            {"trust": "SASH", "latest ok": True, "rpiws_2019_07": True, "lead_time_reduction": False}]
    missed = missed_check_rows(rows, known)
    assert [(m["trust"], m["check"], m["cause"]) for m in missed] == [
        ("LTHT", "latest_cqc", "mechanism"), ("LTHT", "direction", "mechanism"),
        ("SASH", "lead_time_reduction", "**unexplained**")]   # SASH's RPIW entry: met, so not shown
    assert missed[0]["why"] == "no prior rise"
    assert load_known_misses().misses                       # the shipped file is valid
    assert set(typing.get_args(Check)) == set(CHECK_COLUMNS)  # the file names every check the report judges


def test_known_misses_file_with_an_unknown_check_names_file_and_field(tmp_path):
    bad = tmp_path / "known_misses.yaml"
    bad.write_text("misses:\n  - {trusts: [LTHT], checks: [lead_time], cause: mechanism, why: x}\n")
    with pytest.raises(InputError, match=r"known_misses.yaml: field 'misses.0.checks.0'.*latest_cqc"):
        load_known_misses(bad)
    bad.write_text("misses:\n  - {trusts: [LTHT, SATH], checks: [direction], cause: mechanism, why: x}\n"
                   "  - {trusts: [SATH], checks: [direction], cause: input, why: y}\n")
    with pytest.raises(InputError, match=r"known_misses.yaml: .*explained more than once: SATH direction"):
        load_known_misses(bad)


def test_replicated_particles_average_independent_runs_and_replicate_zero_is_the_single_run(inputs, tmp_path):
    import datetime as dt

    listed = yaml.safe_load(inputs["targets"].read_text())
    listed["targets"].append({"trust": "SASH", "statistic": "rpiws_2019_07", "kind": "ordering", "relation": "highest",
                              "observed": "highest", "source": "test", "weight": 1.0, "role": "fitted"})
    (tmp_path / "targets.yaml").write_text(yaml.safe_dump(listed))
    targets = load_targets(tmp_path / "targets.yaml")
    particle = {"rpiw_effect": 0.6, "dropout_per_module": 0.1, "SASH.programme.rpiws_per_year": 6.0}
    model = CalibrationModel(TRUSTS, default_params(), targets, base_seed=5, scale=SCALE,
                             end=dt.date.fromisoformat(END), replicates=3)
    single = CalibrationModel(TRUSTS, default_params(), targets, base_seed=5, scale=SCALE,
                              end=dt.date.fromisoformat(END))
    averaged, one_run = model(particle), single(particle)
    assert averaged.keys() == one_run.keys()
    params, overrides = split_particle(particle, model.trusts, model.fixed_params)
    summaries = [model._replicate(params, overrides, particle_key(particle), r) for r in range(3)]
    runs = [simulated_statistics(each, targets) for each in summaries]
    assert runs[0] == one_run                      # replicates=1 reproduces earlier calibrations exactly
    assert runs[1] != runs[0]                      # the replicates have their own seeds
    for key in averaged:
        assert averaged[key] == pytest.approx(np.mean([run[key] for run in runs]))
    # with components, each replicate's per-trust values behind the cross-trust targets come too; the rest is equal
    model.components = True
    with_components = model(particle)
    assert {k: v for k, v in with_components.items() if not k.startswith(COMPONENT_PREFIX)} == averaged
    for r, each in enumerate(summaries):
        expected = {f"{COMPONENT_PREFIX}{r}.{k}": v for k, v in cross_trust_components(each, targets).items()}
        assert expected and all(with_components[k] == v for k, v in expected.items())


def test_a_setup_stores_the_repository_inputs_relative_so_its_history_resumes_in_another_clone(monkeypatch, tmp_path):
    from sim.calibration.smc import REPO_ROOT, input_path, new_setup

    monkeypatch.chdir(tmp_path)   # the paths given are made absolute first, then stored relative to the repository
    setup = new_setup(CalibrationSetup(name="portable", targets_path=str(REPO_ROOT / "calibration/targets.yaml"),
                                       priors_path=str(REPO_ROOT / "calibration" / ".." / "calibration/priors.yaml")))
    assert (setup.targets_path, setup.priors_path) == ("calibration/targets.yaml", "calibration/priors.yaml")
    assert input_path(setup.priors_path) == REPO_ROOT / "calibration/priors.yaml"
    outside = new_setup(CalibrationSetup(name="outside", targets_path=str(REPO_ROOT / "calibration/targets.yaml"),
                                         priors_path=str(write_priors(tmp_path / "priors.yaml"))))
    assert outside.priors_path == str((tmp_path / "priors.yaml").resolve())


def test_a_resumed_calibration_keeps_the_distance_s_scale_weights_and_may_change_its_kernel(inputs, two_generations, tmp_path):
    """pyabc refits an adaptive distance on resume from the accepted particles alone (the rejected ones are not
    stored), which changes every distance; the calibration logs each generation's weights and a resume takes them."""
    import pyabc
    from sim.calibration.distance import logged_scale_weights

    setup = setup_for(inputs, SHARED)
    roots = dict(results_root=copy_of(two_generations, tmp_path), posterior_dir=tmp_path)
    log = tmp_path / "results" / SHARED / "scale_weights.json"
    before = logged_scale_weights(log)
    assert sorted(before) == [0, 1, 2]        # fitted before generations 0 and 1, and for the next one
    history = pyabc.History(f"sqlite:///{tmp_path / 'results' / SHARED / 'abc.db'}")
    statistics = sorted(before[2])
    _, accepted = history.get_weighted_sum_stats(t=1)
    refit = 1 / pyabc.distance.rmsd(samples=np.array([[s[k] for k in statistics] for s in accepted]),
                                     s0=np.array([history.observed_sum_stat()[k] for k in statistics]), s_ids=statistics)
    assert not np.allclose(refit, [before[2][k] for k in statistics])   # what pyabc alone would have resumed with

    # the resume also narrows the proposal kernel from generation 2 on: recorded in setup.json and the manifest
    posterior = calibrate(setup, StoppingRules(generations=1), workers=1, resume=True, kernel_scaling=1.5, **roots)
    after = logged_scale_weights(log)
    assert after[2] == before[2] and sorted(after) == [0, 1, 2, 3]
    stored = json.loads((tmp_path / "results" / SHARED / "setup.json").read_text())["setup"]
    change = {"from_generation": 2, "from": 3.0, "to": 1.5}
    assert stored["kernel_scaling"] == 1.5
    assert [{k: c[k] for k in change} for c in stored["kernel_scaling_changes"]] == [change]
    manifest = json.loads(posterior.with_name(posterior.stem + ".manifest.json").read_text())
    assert "scaling=1.5" in manifest["transition"] and manifest["kernel_scaling_changes"][0]["to"] == 1.5
    # generation 2 was proposed with the narrower kernel: pyabc's weights are prior over that proposal's density
    import dataclasses

    from sim.calibration.recycle import prior_density, proposal_density
    from sim.calibration.smc import _load_inputs, stored_setup

    history = pyabc.History(f"sqlite:///{tmp_path / 'results' / SHARED / 'abc.db'}")
    params, weights = history.get_distribution(m=0, t=2)
    weights = np.asarray(weights) / np.sum(weights)
    resumed = stored_setup(json.loads((tmp_path / "results" / SHARED / "setup.json").read_text()))
    priors = _load_inputs(resumed)[1]
    wide = dataclasses.replace(resumed, kernel_scaling=3.0, kernel_scaling_changes=[])

    def importance_weights(setup):
        ratio = prior_density(priors, params) / proposal_density(history, priors, setup, 2, params)
        return ratio / ratio.sum()

    assert np.allclose(importance_weights(resumed), weights, rtol=1e-9)
    assert not np.allclose(importance_weights(wide), weights, rtol=1e-6)


def test_a_kernel_change_waits_for_the_generation_after_one_with_saved_jobs(two_generations, tmp_path):
    """The jobs saved of a generation under way were drawn with the old width; a new one starts with the next."""
    from sim.calibration.smc import _change_kernel, _read_json, kernel_scaling_at, stored_setup

    run_dir = copy_of(two_generations, tmp_path) / SHARED
    (run_dir / "generation").mkdir(exist_ok=True)
    (run_dir / "generation" / "00000.pkl").write_bytes(b"a saved job")
    setup = stored_setup(_read_json(run_dir / "setup.json"))
    _change_kernel(setup, 1.0, run_dir / "abc.db")           # generations 0-1 stored, generation 2 under way
    assert setup.kernel_scaling_changes[-1]["from_generation"] == 3
    assert kernel_scaling_at(setup, 2) == 3.0 and kernel_scaling_at(setup, 3) == 1.0


def test_a_stored_setup_gains_parameters_added_since_at_their_defaults():
    """A calibration started before a parameter existed resumes with that parameter at its default (the constant it
    replaced); what the setup stored is kept."""
    from dataclasses import asdict

    from sim.calibration.smc import stored_setup

    saved = {"setup": asdict(CalibrationSetup(name="old", fixed_params={"quality_reference": 2.5}))}
    setup = stored_setup(saved)
    assert setup.fixed_params["quality_reference"] == 2.5
    assert setup.fixed_params["initial_capability"] == default_params()["initial_capability"]
    assert set(setup.fixed_params) == set(default_params())


def test_the_distance_resumes_from_logged_weights_without_refitting(tmp_path):
    from sim.calibration.distance import ResumableDistance

    log = tmp_path / "scale_weights.json"
    log.write_text(json.dumps({"0": {"a": 1.0, "b": 1.0}, "2": {"a": 0.5, "b": 4.0}}))
    distance = ResumableDistance({"a": 1.0, "b": 2.0}, log)

    def no_sample():
        raise AssertionError("a resume with logged weights must not refit them")

    distance.initialize(t=2, get_sample=no_sample, x_0={"a": 0.0, "b": 0.0}, total_sims=100)
    assert distance.get_weights(2).tolist() == [0.5, 8.0]       # logged scale weight x the target's weight
    assert distance({"a": 2.0, "b": 1.0}, {"a": 0.0, "b": 0.0}, t=2) == pytest.approx(9.0)
    with pytest.raises(AssertionError, match="must not refit"):
        ResumableDistance({"a": 1.0, "b": 2.0}, log).initialize(t=3, get_sample=no_sample, x_0={"a": 0.0, "b": 0.0},
                                                                total_sims=100)


def test_the_noise_floor_re_runs_the_best_particles_and_scores_them_as_pyabc_did(two_generations, tmp_path):
    """Each best particle re-run on its own seed and scored with its generation's weights gives back the distance
    pyabc accepted it at (the scoring is pyabc's and the runs reproduce); fresh seeds give a spread."""
    from sim.calibration.noise import noise_floor

    run_dir = copy_of(two_generations, tmp_path) / SHARED
    record = noise_floor(run_dir, particles=3, seeds=4, workers=2, progress=lambda message: None)
    assert record["generation"] == 1 and len(record["rows"]) == 3
    for row in record["rows"]:
        assert row["own_seed_rescored"] == pytest.approx(row["accepted_at"], rel=1e-9)
        assert len(row["fresh"]) == 4 and row["fresh_10"] <= row["fresh_median"] <= row["fresh_90"]
    assert record["rows"][0]["accepted_at"] <= record["rows"][-1]["accepted_at"]     # the best, in order
    assert len({d for row in record["rows"] for d in row["fresh"]}) > 1                # the model is stochastic
    assert (run_dir / "noise_floor.json").is_file() and "| particle |" in (run_dir / "noise_floor.md").read_text()

    from sim.calibration.report import noise_section                 # the fit report's section (--noise)

    class _Posterior:
        manifest = {"generations": 2}

    section = "\n".join(noise_section(run_dir / "noise_floor.json", _Posterior()))
    assert "## Epsilon against the model's noise" in section and "| 3 |" in section and "**not**" not in section
    _Posterior.manifest = {"generations": 3}
    assert "**not** this posterior's last generation" in "\n".join(noise_section(run_dir / "noise_floor.json", _Posterior()))
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(InputError, match="--noise: .*other.json is not an orgsim calibrate-noise record"):
        noise_section(tmp_path / "other.json", _Posterior())


def test_the_noise_floor_rule_ends_epsilons_fall_only_inside_the_noise(two_generations, tmp_path):
    """With --noise-floor, a generation whose epsilon is still falling has its best particles re-run once; the
    rule then counts epsilon as stopped exactly when it is no larger than their median under its own distance."""
    import pyabc

    from sim.calibration.smc import _convergence_check, _load_inputs, _read_json, stored_setup

    run_dir = copy_of(two_generations, tmp_path) / SHARED
    setup = stored_setup(_read_json(run_dir / "setup.json"))
    priors = _load_inputs(setup)[1]
    history = pyabc.History(f"sqlite:///{run_dir / 'abc.db'}")
    # only epsilon can fail: any posterior shift and ESS pass; epsilon's change never passes
    rules = StoppingRules(converge=1e-12, posterior_tol=10.0, min_ess=1, noise_particles=2, noise_seeds=3)
    check = _convergence_check(run_dir, priors, rules.convergence_rule(setup.population_size), rules, workers=2)
    verdict = check(history)
    record_path = run_dir / "noise" / "generation_001.json"
    record = json.loads(record_path.read_text())
    assert record["generation"] == 1 and len(record["rows"]) == 2 and len(record["rows"][0]["fresh"]) == 3
    floor, epsilon = record["own_floor_median"], record["epsilon"]
    table = pd.read_csv(run_dir / "generations.csv")
    assert table["noise_floor_median"].iloc[-1] == pytest.approx(floor, rel=1e-5)
    assert np.isnan(table["noise_floor_median"].iloc[0])                      # generation 0 was not re-run
    assert (verdict is not None) == (epsilon <= floor)
    assert bool(table["converged"].iloc[-1]) == (epsilon <= floor)
    written = record_path.stat().st_mtime_ns
    assert check(history) == verdict and record_path.stat().st_mtime_ns == written   # measured once per generation
    from sim.calibration.progress import progress_figure                  # the floor drawn beside epsilon

    assert progress_figure(SHARED, run_dir.parent).stat().st_size > 10_000
    # a generation whose epsilon has stopped falling by its change is not re-run
    other = copy_of(two_generations, tmp_path / "other") / SHARED
    loose = StoppingRules(converge=10.0, posterior_tol=10.0, min_ess=1, noise_particles=2, noise_seeds=3)
    assert _convergence_check(other, priors, loose.convergence_rule(12), loose)(history) is not None
    assert not (other / "noise").exists()


def test_the_noise_floor_rule_needs_converge():
    out = subprocess.run([sys.executable, "-m", "sim.cli", "calibrate", "--name", "x", "--max-minutes", "1",
                          "--noise-floor", "3"], capture_output=True, text=True)
    assert out.returncode != 0 and "Traceback" not in out.stderr and "--noise-floor" in out.stderr
    assert "--converge" in out.stderr


def test_the_noise_floor_of_an_unknown_calibration_is_a_clear_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "sim.cli", "calibrate-noise", "--name", "nothing", "--results",
                          str(tmp_path)], capture_output=True, text=True)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "--name" in out.stderr and "nothing" in out.stderr


def test_calibrate_progress_reports_what_the_particles_reach_from_the_database(inputs, two_generations, tmp_path,
                                                                              capsys):
    """orgsim calibrate-progress: per fitted target the weighted share of particles meeting it, recomputed here from
    pyabc's own record; a generation that does not exist and a calibration that does not exist are refused by name."""
    import pyabc

    from sim.calibration.progress import meets, progress, shares_by_generation
    from sim.cli import main

    results = copy_of(two_generations, tmp_path)
    text, path = progress("two_generations", results_root=results)
    assert text.startswith("# Calibration two_generations: generation 1 of 0-1")
    history = pyabc.History(f"sqlite:///{results / 'two_generations' / 'abc.db'}")
    weights, stats = history.get_weighted_sum_stats(t=1)
    weights = np.asarray(weights) / np.sum(weights)
    targets = {t.id: t for t in load_targets(inputs["targets"]).targets}
    by_generation = shares_by_generation(history, load_targets(inputs["targets"]))
    assert list(by_generation.columns) == [0, 1]
    for key in history.observed_sum_stat():
        values = np.array([s[key] for s in stats])
        share = float(np.sum(weights * meets(targets[key].kind, values, targets[key].observed, targets[key].observed_value)))
        assert f"| {key} | {targets[key].kind} |" in text and text.split(f"| {key} |")[1].split("\n")[0].rstrip(" |") \
            .endswith(f"{share:.0%}")
        assert by_generation.loc[key, 1] == pytest.approx(share)       # the figure's last column
    assert "| rpiw_effect | [0.3, 1] |" in text
    from sim.calibration.progress import simulations_meeting    # and what the kept simulations reach together
    from sim.calibration.recycle import load_simulations
    kept = pd.concat(load_simulations(results / "two_generations").values(), ignore_index=True)
    assert f"## What the simulations reach together ({len(kept)} kept simulations of generation(s) 0, 1)" in text
    met = simulations_meeting(kept, load_targets(inputs["targets"]))      # the fitted targets' columns only
    assert f"| every fitted target | {met.shape[1]} | {int(met.all(axis=1).sum())} |" in text
    assert main(["calibrate-progress", "two_generations", "--results", str(results), "--generation", "0"]) == 0
    assert (results / SHARED / "progress.md").read_text().startswith(f"# Calibration {SHARED}: generation 0 of 0-1")
    assert (results / SHARED / "progress.png").stat().st_size > 10_000
    capsys.readouterr()
    assert main(["calibrate-progress", "two_generations", "--results", str(results), "--generation", "5"]) == 2
    assert "--generation: 5 is not allowed; calibration 'two_generations' has generations 0-1" in capsys.readouterr().err
    assert main(["calibrate-progress", "nothing_here", "--results", str(results)]) == 2
    assert "no calibration named 'nothing_here'" in capsys.readouterr().err
    assert path == results / "two_generations" / "progress.md"
    setup_file = results / "two_generations" / "setup.json"            # inputs changed since: refused, not misreported
    setup = json.loads(setup_file.read_text())
    setup["setup"]["targets_sha256"] = "0" * 64
    setup_file.write_text(json.dumps(setup))
    assert main(["calibrate-progress", "two_generations", "--results", str(results)]) == 2
    assert "is not the one calibration 'two_generations' started with" in capsys.readouterr().err


def test_meets_follows_the_fit_report_s_rules():
    from sim.calibration.progress import meets

    assert meets("count", np.array([69.0, 131.0, 130.0]), 100, 100.0).tolist() == [False, False, True]
    assert meets("count", np.array([1.0, 2.0]), 0, 0.0).tolist() == [True, False]          # within 1 of a small count
    assert meets("ratio", np.array([0.51, 0.70]), 0.62, 0.62).tolist() == [False, True]
    assert meets("ordinal", np.array([2.4, 2.6]), "good", 2.0).tolist() == [True, False]
    assert meets("ordering", np.array([1.0, 1.5, 2.0]), "highest", 1.0).tolist() == [True, False, False]


def test_a_generation_killed_midway_resumes_from_its_saved_jobs(inputs, two_generations, tmp_path, interrupt_jobs,
                                                                 capfd):
    """The calibration's sampler saves each finished job (sim/calibration/sampler.py): a calibration killed in the
    middle of a generation keeps them, and its resume (here on two workers) reuses them, since the generation starts
    from the same state, and runs only the others. (That the jobs then give the population an uninterrupted run gives
    is tests/test_calibration_sampler.py's.)"""
    import pickle

    import pyabc

    import sim.calibration.sampler as sampler_module

    setup = setup_for(inputs, SHARED)
    results = copy_of(two_generations, tmp_path)
    interrupt_jobs.after(4)
    with pytest.raises(KeyboardInterrupt):
        calibrate(setup, StoppingRules(generations=1), workers=1, resume=True, results_root=results,
                  posterior_dir=tmp_path)
    jobs = results / SHARED / sampler_module.JOB_DIR
    saved = []
    for path in sorted(jobs.glob("*.pkl")):
        with path.open("rb") as handle:
            saved += [dict(p.parameter) for p in pickle.load(handle)[0].accepted_particles]
    assert len(saved) == 4
    from sim.calibration.progress import progress
    assert "Generation 2 under way: 4 of 12 jobs finished and saved" in progress(SHARED, results_root=results)[0]
    interrupt_jobs.restore()
    # --max-minutes stops sampling in the middle of the generation, keeping what is done (one more job here)
    calibrate(setup, StoppingRules(max_walltime_minutes=1e-6), workers=1, resume=True, results_root=results,
              posterior_dir=tmp_path)
    assert json.loads((results / SHARED / "setup.json").read_text())["finished"].startswith(
        "--max-minutes reached in generation 2: 5 of 12 jobs finished and saved")
    capfd.readouterr()
    calibrate(setup, StoppingRules(generations=1), workers=2, resume=True, results_root=results, posterior_dir=tmp_path)
    assert "generation 2: 5 of 12 jobs loaded" in capfd.readouterr().err
    assert not jobs.exists()              # cleared once the generation is in the history
    history = pyabc.History(f"sqlite:///{results / SHARED / 'abc.db'}")
    population, _ = history.get_distribution(t=2)
    stored = [row.to_dict() for _, row in population.iterrows()]
    assert all(any(row == pytest.approx(particle) for row in stored) for particle in saved)


def test_leave_one_trust_out_posteriors_are_recomputed_from_the_calibrations_own_simulations(two_generations, tmp_path):
    from sim.calibration.recycle import recycle
    from sim.calibration.sampler import SIMULATIONS_DIR

    run_dir = copy_of(two_generations, tmp_path) / SHARED
    kept = sorted(p.name for p in (run_dir / SIMULATIONS_DIR).iterdir())
    assert kept == ["generation_000.csv.gz", "generation_001.csv.gz"]          # every stored generation, all runs
    record = recycle(run_dir, ["SASH"], progress=lambda line: None)
    checks = record["checks"]
    assert checks["population_weights_max_relative_error"] < 1e-6      # pyabc's importance weights, from the proposals
    assert checks["distances_max_abs_error"] < 1e-9 and checks["accepted_as_recorded"]
    assert checks["scale_weights_max_relative_error"] < 1e-9           # pyabc's rmsd rule, refitted
    assert checks["main_posterior"]["accepted"] >= 12                  # the last population, at least
    posterior = load_posterior(run_dir / "loto" / "posterior_loto_SASH.csv")
    assert posterior.manifest["leave_out"] == "SASH" and posterior.manifest["trusts_calibrated"] == ["SATH"]
    assert "SASH.programme.rpiws_per_year" not in posterior.frame      # no data of SASH: its input stays as scenario
    assert np.isclose(posterior.weights.sum(), 1) and record["leave_out"]["SASH"]["accepted"] == len(posterior.frame)
    assert (run_dir / "loto" / "recycle_check.md").is_file()
    pooled = load_posterior(run_dir / "loto" / f"posterior_pooled_{SHARED}.csv")
    assert len(pooled.frame) == checks["main_posterior"]["accepted"] and "SASH.programme.rpiws_per_year" in pooled.frame
    report = write_fit_report(two_generations.parent / "posterior" / f"posterior_{SHARED}.csv", tmp_path / "report",
                              n_draws=2, loto=[run_dir / "loto" / "posterior_loto_SASH.csv"], scale=SCALE, seed=5,
                              targets_path=posterior.manifest["targets_file"], trusts=TRUSTS, end=END, progress=False)
    assert f"recomputed without SASH from calibration {SHARED}'s own simulations" in report.read_text()

    (run_dir / SIMULATIONS_DIR / "generation_000.csv.gz").unlink()     # as in a calibration that began keeping them
    record = recycle(run_dir, ["SASH"], progress=lambda line: None)    # late: the last generation alone
    assert record["generations_pooled"] == [1] and record["leave_out"]["SASH"]["scale_weights_from_generation"] == 1
    assert record["checks"]["scale_weights_max_relative_error"] is None
    shutil.rmtree(run_dir / SIMULATIONS_DIR)
    with pytest.raises(InputError, match="needs the simulations of its last finished generation"):
        recycle(run_dir, ["SASH"], progress=lambda line: None)


def test_calibrate_progress_counts_what_the_kept_simulations_meet_together():
    """The 'together' section: simulations meeting every target of a group, against the product of the targets'
    shares, and the pairs met together least often; counted here by hand on four simulations."""
    from sim.calibration.progress import latest_ratings, simulations_meeting, together
    from sim.calibration.targets import Target, TargetSet

    def target(trust, statistic, kind, observed):
        return Target(trust=trust, statistic=statistic, kind=kind, observed=observed, source="test", weight=1.0,
                      role="fitted")

    targets = TargetSet(targets=[target("SASH", "cqc.2014", "ordinal", "good"),
                                 target("SASH", "cqc.2021", "ordinal", "outstanding"),
                                 target("SATH", "cqc.2020", "ordinal", "inadequate"),
                                 target("SATH", "rpiws_2019_07", "count", 38)])
    assert latest_ratings(targets) == ["SASH.cqc.2021", "SATH.cqc.2020"]
    # SASH outstanding in simulations 0-2, SATH inadequate in 2-3: together only in simulation 2 (1 against 4 x 3/4 x 1/2)
    simulations = pd.DataFrame({"stat:SASH.cqc.2014": [2.0, 2.0, 1.0, 2.0], "stat:SASH.cqc.2021": [3.0, 2.6, 3.0, 1.0],
                                "stat:SATH.cqc.2020": [1.0, 2.0, 0.0, 0.4], "stat:SATH.rpiws_2019_07": [38, 0, 48, np.nan]})
    met = simulations_meeting(simulations, targets)
    assert met["SASH.cqc.2021"].tolist() == [True, True, True, False]
    assert met["SATH.rpiws_2019_07"].tolist() == [True, False, True, False]    # within 30%; no value meets nothing
    text = "\n".join(together({3: simulations}, targets, min_expected=1.0))
    assert "## What the simulations reach together (4 kept simulations of generation(s) 3)" in text
    assert "| each trust's latest CQC rating | 2 | 1 | 1.5 |" in text
    assert "| CQC ratings | 3 | 0 | 1.12 |" in text                 # 4 x 3/4 x 3/4 x 1/2
    assert "| SASH.cqc.2021 | SATH.cqc.2020 | 75%, 50% | 1 | 1.5 | 0.67 |" in text
    assert "| SASH.cqc.2021 | SATH.rpiws_2019_07 |" not in text     # together more often than independence: not listed
    assert together({}, targets) == []
