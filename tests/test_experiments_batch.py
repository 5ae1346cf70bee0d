"""The batch runner: a run's results depend only on its spec (not on workers, backend or batch),
Dask gives the local results row for row, and an interrupted sweep resumes without recomputing."""

import os
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from sim.experiments.batch import OutputSelection, RunSpec, read_manifest, read_runs, run_batch
from sim.experiments.compare import compare_specs, load_parameter_sets, paired_differences
from sim.experiments.designs import experiment_specs
from sim.experiments.schema import load_experiment
from sim.params import default_params
from test_experiments_helpers import run_cli, start_cli, write_experiment

OUTPUTS = OutputSelection(final=("quality_final", "engagement_mean_final", "l4l_complete_2021_03", "cqc_latest"),
                          series=("quality",))


def tiny_specs(count=8):
    """Runs that differ in parameters, seeds and scenario, each a few hundredths of a second."""
    specs = []
    for index in range(count):
        params = {**default_params(), "rpiw_effect": 0.4 + 0.05 * index}
        specs.append(RunSpec(run_index=index, scenario=("SATH", "SASH")[index % 2], params=params,
                             seed_index=index, base_seed=7, scale=0.02, end=pd.Timestamp("2016-01-01").date()))
    return specs


def test_seed_follows_the_documented_rule():
    spec = tiny_specs(3)[2]
    expected = np.random.SeedSequence(7, spawn_key=(2,))
    assert spec.seed_sequence().generate_state(4).tolist() == expected.generate_state(4).tolist()


def test_results_do_not_depend_on_worker_count_or_batch_composition():
    specs = tiny_specs()
    alone = run_batch(specs, None, OUTPUTS, workers=1, progress=False)
    parallel = run_batch(specs, None, OUTPUTS, workers=2, progress=False)
    pd.testing.assert_frame_equal(alone.runs, parallel.runs)
    pd.testing.assert_frame_equal(alone.series, parallel.series)
    subset = run_batch(specs[3:6], None, OUTPUTS, workers=1, progress=False)
    pd.testing.assert_frame_equal(subset.runs, alone.runs.iloc[3:6].reset_index(drop=True))
    assert alone.runs["quality_final"].nunique() > 1  # the runs really differ


def test_dask_local_cluster_equals_local_joblib_row_for_row(tmp_path):
    distributed = pytest.importorskip("distributed")
    specs = tiny_specs()
    local = run_batch(specs, None, OUTPUTS, workers=2, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        on_dask = run_batch(specs, tmp_path / "dask", OUTPUTS, scheduler=cluster.scheduler_address, progress=False)
    pd.testing.assert_frame_equal(local.runs, on_dask.runs)
    pd.testing.assert_frame_equal(local.series, on_dask.series)
    assert read_manifest(tmp_path / "dask")["sessions"][-1]["backend"].startswith("dask")


def test_manifest_records_version_commit_scenarios_parameters_and_seeds(tmp_path):
    run_batch(tiny_specs(2), tmp_path / "out", OUTPUTS, progress=False, description={"purpose": "test"})
    manifest = read_manifest(tmp_path / "out")
    assert manifest["package_version"] and manifest["git_commit"]
    assert set(manifest["scenarios"]) == {"SATH", "SASH"}
    assert manifest["scenarios"]["SATH"]["staff"] > 0
    assert manifest["parameters"]["varied"] == ["rpiw_effect"]
    assert manifest["base_seeds"] == [7] and "SeedSequence" in manifest["seed_rule"]
    assert manifest["description"] == {"purpose": "test"} and manifest["complete"] is True
    runs = read_runs(tmp_path / "out")
    assert {"seed_index", "base_seed", "scenario", "param_rpiw_effect"} <= set(runs.columns)


def test_sweep_killed_midway_resumes_without_recomputing(tmp_path):
    path = write_experiment(tmp_path, name="killed", replicates=120, end="2015-10-01")
    out = tmp_path / "out"
    process = start_cli("sweep", path, "--out", out, "--chunk-size", 1, "--no-progress",
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(list((out / "runs").glob("part-*.parquet"))) < 5:
            assert process.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "the sweep wrote no results"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    parts_before = {part.name: part.read_bytes() for part in (out / "runs").glob("part-*.parquet")}
    finished = read_runs(out)
    assert 5 <= len(finished) < 120

    result = run_cli("sweep", path, "--out", out, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"{120 - len(finished)} runs computed, {len(finished)} reused" in result.stdout
    session = read_manifest(out)["sessions"][-1]
    assert session["runs_done_before"] == len(finished) and session["status"] == "complete"
    for name, content in parts_before.items():  # what was written before the kill is untouched
        assert (out / "runs" / name).read_bytes() == content
    resumed = read_runs(out)
    assert resumed["run_index"].tolist() == list(range(120))
    uninterrupted = run_batch(experiment_specs(load_experiment(str(path))), None,
                              OutputSelection(final=("quality_final", "engagement_mean_final", "cqc_latest_score")),
                              progress=False)
    pd.testing.assert_frame_equal(resumed, uninterrupted.runs, check_dtype=False)


def test_ctrl_c_keeps_finished_runs_and_exits_130(tmp_path):
    path = write_experiment(tmp_path, name="interrupted", replicates=300, end="2015-10-01")
    out = tmp_path / "out"
    process = start_cli("sweep", path, "--out", out, "--chunk-size", 1000, "--no-progress",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "manifest.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(1.5)  # some runs finish, none is written yet (chunks of 1000)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "run the same command again to resume" in stdout
    kept = read_runs(out)
    assert 0 < len(kept) < 300  # the unflushed chunk was written on the way out
    assert read_manifest(out)["sessions"][-1]["status"] == "interrupted"


def test_compare_uses_common_random_numbers():
    sets = load_parameter_sets(None)
    specs = compare_specs(["SATH", "SATH", "sath_half_rpiw_pace"], sets, replicates=3, seed=1, scale=0.02,
                          end=pd.Timestamp("2016-07-01").date())
    runs = run_batch(specs, None, OutputSelection(final=("quality_final", "rpiws_total")), progress=False).runs
    differences = paired_differences(runs, ["SATH", "SATH", "sath_half_rpiw_pace"], ["quality_final", "rpiws_total"])
    same = differences[differences["variant"] == "SATH"]
    assert (same["difference"] == 0).all()  # the same scenario with the same seeds: identical runs
    half = differences[(differences["variant"] == "sath_half_rpiw_pace") & (differences["output"] == "rpiws_total")]
    assert (half["difference"] < 0).all()
    assert runs.loc[runs["arm"] == 0, "quality_final"].nunique() > 1  # replicates do differ from each other


def test_compare_cli_writes_table_and_figure(tmp_path):
    result = run_cli("compare", "SATH", "sath_half_rpiw_pace", "--replicates", 2, "--scale", 0.02,
                     "--end", "2016-07-01", "--outputs", "quality_final,rpiws_total", "--out", tmp_path / "cmp",
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert set(table["output"]) == {"quality_final", "rpiws_total"}
    assert {"difference", "ci_low", "ci_high", "interval_low", "interval_high"} <= set(table.columns)
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 0
    assert (tmp_path / "cmp" / "manifest.json").exists()
