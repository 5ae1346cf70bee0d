"""Sensitivity of a stochastic model: seed noise against parameter effects, from the replicates (common random
numbers), on tables where the variance components are known; flags and advice when the means are noisy."""

import numpy as np
import pandas as pd
import pytest

from sim.experiments import sensitivity
from sim.experiments.schema import load_experiment
from test_experiments_helpers import run_cli, write_experiment


def crossed_runs(points=400, replicates=4, parameters_sd=1.0, shared_sd=0.5, point_sd=0.7, seed=0):
    """Y[p, r] = f(p) + s(r) + e(p, r): a parameter effect, a seed effect shared by every point (common random
    numbers) and seed noise that differs between points, with known variances."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(0, parameters_sd, points)
    shared = rng.normal(0, shared_sd, replicates)
    rows = [{"case": "SATH", "point": p, "replicate": r,
             "quality_final": 2 + effect[p] + shared[r] + rng.normal(0, point_sd)}
            for p in range(points) for r in range(replicates)]
    runs = pd.DataFrame(rows)
    runs.attrs["drawn"] = {"parameters": effect.var(ddof=1), "seed_shared": shared.var(ddof=1) if replicates > 1
                           else 0.0, "seed_point": point_sd ** 2}   # the components as drawn (4 seeds vary a lot)
    return runs


def test_variance_components_recover_known_shares():
    runs = crossed_runs()
    noise = sensitivity.variance_decomposition(runs, ["quality_final"], num_resamples=200).iloc[0]
    drawn = runs.attrs["drawn"]
    total = sum(drawn.values())
    for key in ("parameters", "seed_shared", "seed_point"):
        assert noise[key] == pytest.approx(drawn[key] / total, abs=0.03), key
    assert noise["parameters"] + noise["seed_shared"] + noise["seed_point"] == pytest.approx(1.0)
    assert noise["parameters_low"] < drawn["parameters"] / total < noise["parameters_high"]
    # the replicate means keep 0.49 / 4 of noise against about 1.0 of parameters: 11%, so 5 replicates for 10%
    in_means = (0.49 / 4) / (drawn["parameters"] + 0.49 / 4)
    assert noise["noise_in_means"] == pytest.approx(in_means, abs=0.02)
    assert noise["noise_in_means_low"] < in_means < noise["noise_in_means_high"]
    assert noise["replicates_needed"] in (4, 5, 6)
    assert (noise["points"], noise["replicates"]) == (400, 4)


def test_pure_noise_and_noise_free_outputs_and_one_replicate():
    noise_only = sensitivity.variance_decomposition(crossed_runs(parameters_sd=0.0), ["quality_final"],
                                                    num_resamples=0).iloc[0]
    assert noise_only["parameters"] < 0.05 and noise_only["noise_in_means"] > 0.8
    exact = sensitivity.variance_decomposition(crossed_runs(shared_sd=0.0, point_sd=0.0), ["quality_final"],
                                               num_resamples=0).iloc[0]
    assert exact["parameters"] == pytest.approx(1.0) and exact["noise_in_means"] == pytest.approx(0.0)
    single = sensitivity.variance_decomposition(crossed_runs(replicates=1), ["quality_final"], num_resamples=10)
    assert single["parameters"].isna().all() and "cannot separate" in "\n".join(sensitivity.variance_markdown(single))


def test_noisy_means_flag_the_outputs_indices_and_say_how_many_replicates(tmp_path):
    path = write_experiment(tmp_path, parameters={"rpiw_effect": {}, "relapse_rate": {}},
                            design={"kind": "sobol", "samples": 32}, outputs={"final": ["quality_final"]})
    experiment = load_experiment(str(path))
    from sim.experiments.designs import sample_points

    points = sample_points(experiment)
    rng = np.random.default_rng(1)
    runs = pd.DataFrame([{"case": "SATH", "point": p, "replicate": r,
                          "quality_final": points.loc[p, "rpiw_effect"] + rng.normal(0, 0.5)}
                         for p in range(len(points)) for r in range(2)])
    indices = sensitivity.analyse(experiment, runs, num_resamples=20)
    final = indices[indices["n"] == 32]
    assert final["flags"].str.contains("noisy means").all()
    words = sensitivity.advice(indices, replicates=2)
    assert any("more than 10% seed noise" in line and "replicates_needed" in line for line in words)
    quiet = runs.assign(quality_final=points.loc[runs["point"], "rpiw_effect"].to_numpy())
    assert not sensitivity.analyse(experiment, quiet, num_resamples=20)["flags"].str.contains("noisy").any()


def test_sensitivity_writes_and_prints_the_decomposition(tmp_path):
    path = write_experiment(tmp_path, name="noisy", replicates=2, end="2016-06-01",
                            parameters={"rpiw_effect": {}, "relapse_rate": {}},
                            design={"kind": "morris", "samples": 3, "seed": 1})
    out = tmp_path / "out"
    result = run_cli("sensitivity", path, "--out", out, "--no-progress", "--resamples", 20)
    assert result.returncode == 0, result.stderr
    assert "noise_in_means" in result.stdout and "replicates_needed" in result.stdout
    variance = pd.read_csv(out / "analysis" / "variance.csv")
    assert set(variance["output"]) == {"quality_final", "engagement_mean_final", "cqc_latest_score"}
    shares = variance[["parameters", "seed_shared", "seed_point"]].sum(axis=1, min_count=3)
    assert np.allclose(shares.dropna(), 1.0) and shares.notna().any()
    assert (variance["run_variance"] == 0).equals(shares.isna())        # an output that never varies: no shares
    assert (out / "analysis" / "variance_SATH.png").is_file()
    assert "## Seed noise and parameters" in (out / "analysis" / "summary.md").read_text()


def test_an_output_that_never_varies_has_its_sobol_indices_flagged_undefined(tmp_path):
    path = write_experiment(tmp_path, parameters={"rpiw_effect": {}, "relapse_rate": {}},
                            design={"kind": "sobol", "samples": 16}, outputs={"final": ["quality_final", "staff"]})
    experiment = load_experiment(str(path))
    from sim.experiments.designs import sample_points

    points = sample_points(experiment)
    runs = pd.DataFrame([{"case": "SATH", "point": p, "replicate": 0, "staff": 4200.0,
                          "quality_final": points.loc[p, "rpiw_effect"]} for p in range(len(points))])
    indices = sensitivity.analyse(experiment, runs, num_resamples=10)
    final = indices[(indices["n"] == 16) & indices["index"].isin(["S1", "ST"])]
    constant = final[final["output"] == "staff"]
    assert constant["value"].isna().all() and constant["flags"].str.contains("undefined: output constant").all()
    assert not final.loc[final["output"] == "quality_final", "flags"].str.contains("undefined").any()
    assert any("staff take(s) one value" in line for line in sensitivity.advice(indices, replicates=1))
    rounding = crossed_runs(parameters_sd=0.0, shared_sd=0.0, point_sd=1e-15)   # a sum over weeks, rounded
    assert np.isnan(sensitivity.variance_decomposition(rounding, ["quality_final"], num_resamples=0)["parameters"][0])
