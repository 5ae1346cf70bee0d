"""Adaptive-N Sobol: the design of N is the first rows of the design of 2N, so doubling N reuses every finished run
from the results folder; rounds stop when the indices and their ranking are stable within the tolerance."""

import json

import numpy as np
import pandas as pd
import pytest

from sim.experiments import sensitivity
from sim.experiments.batch import OutputSelection, read_manifest, read_runs, specs_fingerprint
from sim.experiments.designs import experiment_specs, sample_points
from sim.experiments.schema import load_experiment
from test_experiments_helpers import run_cli, write_experiment

PARAMETERS = {"rpiw_effect": {}, "culture_engagement_weight": {}, "quality_engagement_weight": {}}


def at(experiment, n):
    return experiment.model_copy(update={"design": experiment.design.model_copy(update={"samples": n})})


def test_the_design_of_n_is_the_first_rows_of_the_design_of_2n(tmp_path):
    experiment = load_experiment(str(write_experiment(tmp_path, scenarios=["SATH", "SASH"], replicates=2,
                                                      parameters=PARAMETERS, design={"kind": "sobol", "samples": 8,
                                                                                     "seed": 3})))
    small, large = sample_points(at(experiment, 8)).to_numpy(), sample_points(at(experiment, 32)).to_numpy()
    assert small.shape == (8 * 5, 3) and large.shape == (32 * 5, 3)
    assert np.array_equal(small, large[: len(small)])          # bit for bit: SALib's scrambled Sobol sequence
    # numbered round by round, the runs of N come first (two cases, so case-major numbering would not do)
    alone = experiment_specs(at(experiment, 8))
    rounds = experiment_specs(at(experiment, 32), [8, 16, 32])
    assert len(rounds) == 2 * 32 * 5 * 2
    outputs = OutputSelection(("quality_final",))
    assert specs_fingerprint(rounds[: len(alone)], outputs) == specs_fingerprint(alone, outputs)
    assert [spec.as_record() for spec in rounds[: len(alone)]] == [spec.as_record() for spec in alone]
    # and the later rounds hold each case's new points only
    second = rounds[len(alone): 2 * len(alone)]
    assert {spec.labels["point"] for spec in second} == set(range(8 * 5, 16 * 5))
    assert sorted(spec.labels["case"] for spec in second) == sorted(["SATH", "SASH"] * 8 * 5 * 2)


def test_round_changes_measure_the_largest_move_and_the_ranking():
    before = pd.DataFrame({"case": "SATH", "output": "quality_final", "parameter": ["a", "b", "c"],
                           "S1": [0.5, 0.3, 0.01], "ST": [0.6, 0.35, 0.02]})
    small_move = before.assign(S1=[0.52, 0.29, 0.0], ST=[0.61, 0.33, 0.03])
    change = sensitivity.round_changes(before, small_move, tolerance=0.05).iloc[0]
    assert change["max_change_S1"] == pytest.approx(0.02) and change["max_change_ST"] == pytest.approx(0.02)
    assert change["rank_changes"] == 0 and change["stable"]
    swapped = before.assign(ST=[0.40, 0.42, 0.02])            # b overtakes a: a ranking change, and a move of 0.2
    change = sensitivity.round_changes(before, swapped, tolerance=0.05).iloc[0]
    assert change["rank_changes"] == 2 and change["moved"] == "a, b" and not change["stable"]
    small = pd.DataFrame({"case": "SATH", "output": "quality_final", "parameter": ["a", "c", "d"],
                          "S1": [0.5, 0.01, 0.0], "ST": [0.6, 0.02, 0.01]})
    reordered = small.assign(ST=[0.6, 0.01, 0.02])            # c and d swap, both below the tolerance: a tie
    tied = sensitivity.round_changes(small, reordered, tolerance=0.05).iloc[0]
    assert tied["rank_changes"] == 0 and tied["stable"]


def tiny_sobol(tmp_path, samples=4):
    return write_experiment(tmp_path, name="adaptive", parameters=PARAMETERS, replicates=1,
                            design={"kind": "sobol", "samples": samples, "seed": 1},
                            outputs={"final": ["quality_final", "engagement_mean_final"]})


def test_adaptive_doubles_n_reusing_runs_until_max_n_and_reports_each_round(tmp_path):
    path, out = tiny_sobol(tmp_path), tmp_path / "out"
    result = run_cli("sensitivity", path, "--out", out, "--no-progress", "--resamples", 10, "--adaptive",
                     "--tolerance", 1e-9, "--max-n", 16)
    assert result.returncode == 0, result.stderr
    assert "not converged by --max-n 16" in result.stdout
    sessions = read_manifest(out)["sessions"]
    assert [s["runs_done_before"] for s in sessions] == [0, 20, 40]       # each round reuses every earlier run
    assert [s["runs_to_do"] for s in sessions] == [20, 20, 40]
    assert len(read_runs(out)) == 16 * 5
    rounds = pd.read_csv(out / "analysis" / "adaptive.csv")
    assert list(rounds["n"].unique()) == [8, 16] and list(rounds["previous_n"].unique()) == [4, 8]
    assert set(rounds["output"]) == {"quality_final", "engagement_mean_final"}
    assert not rounds["stable"].any() and (rounds[["max_change_S1", "max_change_ST"]].max(axis=1) > 1e-9).all()
    summary = (out / "analysis" / "summary.md").read_text()
    assert "## Adaptive N" in summary and "NOT converged by N = 16" in summary
    assert (out / "analysis" / "adaptive.png").stat().st_size > 0
    assert pd.read_csv(out / "analysis" / "indices.csv")["n"].max() == 16     # the final analysis is at the last N

    # the same command again: nothing to run; a fixed-N analysis of the first round reads its runs back
    again = run_cli("sensitivity", path, "--out", out, "--no-progress", "--resamples", 10, "--adaptive",
                    "--tolerance", 1e-9, "--max-n", 16)
    assert again.returncode == 0, again.stderr
    assert all(s["runs_to_do"] == 0 for s in read_manifest(out)["sessions"][3:])
    fixed = run_cli("sensitivity", path, "--out", out, "--no-progress", "--resamples", 10)
    assert fixed.returncode == 0, fixed.stderr
    assert pd.read_csv(out / "analysis" / "indices.csv")["n"].max() == 4
    assert read_manifest(out)["runs"] == 80 and read_manifest(out)["complete"]


def test_adaptive_stops_when_stable(tmp_path):
    out = tmp_path / "out"
    result = run_cli("sensitivity", tiny_sobol(tmp_path), "--out", out, "--no-progress", "--resamples", 10,
                     "--adaptive", "--tolerance", 10, "--max-n", 64)
    assert result.returncode == 0, result.stderr
    assert "converged at N = 8" in result.stdout
    assert len(read_runs(out)) == 8 * 5                       # round 2 was stable: no third round
    assert "converged at N = 8" in (out / "analysis" / "summary.md").read_text()


@pytest.mark.parametrize("options, words", [
    (["--max-n", 12], "--max-n 12: give a power of two"),
    (["--max-n", 2], "at least design.samples (4)"),
    (["--max-n", 1 << 20], "more than --max-runs"),
])
def test_adaptive_refuses_bad_options_before_running(tmp_path, options, words):
    out = tmp_path / "out"
    result = run_cli("sensitivity", tiny_sobol(tmp_path), "--out", out, "--adaptive", *options)
    assert result.returncode == 2 and words in result.stderr
    assert not out.exists()


def test_adaptive_needs_a_sobol_design(tmp_path):
    path = write_experiment(tmp_path, parameters=PARAMETERS, design={"kind": "morris", "samples": 2})
    result = run_cli("sensitivity", path, "--out", tmp_path / "out", "--adaptive")
    assert result.returncode == 2 and "--adaptive doubles a Sobol design's N" in result.stderr
