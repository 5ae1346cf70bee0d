"""Designs have the sizes and bounds SALib promises; the analysis recovers known sensitivities."""

import numpy as np
import pandas as pd
import pytest

from sim.experiments import sensitivity
from sim.experiments.compare import summarise, weighted_quantile
from sim.experiments.designs import experiment_specs, sample_points
from sim.experiments.schema import load_experiment
from sim.params import PARAMETERS
from test_experiments_helpers import write_experiment

THREE = {"rpiw_effect": {}, "relapse_rate": {}, "one_way_efficiency": {}}


def width(name):
    return PARAMETERS[name].high - PARAMETERS[name].low


def experiment(tmp_path, **fields):
    return load_experiment(str(write_experiment(tmp_path, **fields)))


def test_full_factorial_crosses_values_cases_and_replicates(tmp_path):
    exp = experiment(tmp_path, scenarios=["SASH", "SATH"], replicates=3,
                     parameters={"rpiw_effect": {"values": [0.4, 0.8]}, "relapse_rate": {"low": 0.0, "high": 0.1}},
                     design={"kind": "full_factorial", "levels": 3},
                     scenario_factors={"ceo": {"stable": {"leadership": {"changes": []}}, "as_observed": {}}})
    specs = experiment_specs(exp)
    assert len(specs) == 2 * 2 * (2 * 3) * 3
    assert [s.run_index for s in specs] == list(range(len(specs)))
    assert sorted({s.params["relapse_rate"] for s in specs}) == [0.0, 0.05, 0.1]
    assert {s.labels["case"] for s in specs} == {"SASH/ceo=stable", "SASH/ceo=as_observed",
                                                 "SATH/ceo=stable", "SATH/ceo=as_observed"}


def test_common_random_numbers_reuse_replicate_seeds_across_points(tmp_path):
    exp = experiment(tmp_path, parameters={"rpiw_effect": {"values": [0.4, 0.8]}}, replicates=3)
    assert [s.seed_index for s in experiment_specs(exp)] == [0, 1, 2, 0, 1, 2]
    independent = experiment(tmp_path, parameters={"rpiw_effect": {"values": [0.4, 0.8]}}, replicates=3,
                             common_random_numbers=False)
    assert [s.seed_index for s in experiment_specs(independent)] == list(range(6))


def test_sobol_design_size_and_bounds(tmp_path):
    exp = experiment(tmp_path, parameters={**THREE, "rpiw_effect": {"low": 0.5, "high": 0.9}},
                     design={"kind": "sobol", "samples": 16})
    points = sample_points(exp)
    assert len(points) == 16 * (3 + 2)
    assert points["rpiw_effect"].between(0.5, 0.9).all()
    spec = PARAMETERS["relapse_rate"]
    assert points["relapse_rate"].between(spec.low, spec.high).all()
    with_pairs = experiment(tmp_path, parameters=THREE, design={"kind": "sobol", "samples": 16, "second_order": True})
    assert len(sample_points(with_pairs)) == 16 * (2 * 3 + 2)


def test_morris_and_latin_design_sizes(tmp_path):
    morris = experiment(tmp_path, parameters=THREE, design={"kind": "morris", "samples": 5, "levels": 4})
    assert len(sample_points(morris)) == 5 * (3 + 1)
    latin = experiment(tmp_path, parameters=THREE, design={"kind": "latin_hypercube", "samples": 7})
    assert len(sample_points(latin)) == 7


def test_truncnorm_distribution_stays_in_range(tmp_path):
    exp = experiment(tmp_path, parameters={"rpiw_effect": {"distribution": "truncnorm", "mean": 0.8, "sd": 0.3},
                                           "relapse_rate": {}}, design={"kind": "latin_hypercube", "samples": 200})
    values = sample_points(exp)["rpiw_effect"]
    spec = PARAMETERS["rpiw_effect"]
    assert values.between(spec.low, spec.high).all()
    assert abs(values.mean() - 0.8) < abs(0.5 * (spec.low + spec.high) - 0.8)  # pulled towards the mean


def synthetic_runs(exp, function, replicates=2, noise=0.0):
    """Runs as the batch runner would record them, with outputs from a known function of the parameters."""
    points = sample_points(exp)
    rng = np.random.default_rng(0)
    rows = []
    for point, values in points.iterrows():
        for replicate in range(replicates):
            rows.append({"case": "SATH", "point": point, "replicate": replicate,
                         "quality_final": function(values) + noise * rng.normal()})
    return pd.DataFrame(rows)


def test_sobol_analysis_ranks_a_known_function(tmp_path):
    exp = experiment(tmp_path, parameters=THREE, design={"kind": "sobol", "samples": 256},
                     outputs={"final": ["quality_final"]})
    runs = synthetic_runs(exp, lambda v: 10 * v["rpiw_effect"] + 20 * v["relapse_rate"] + 0 * v["one_way_efficiency"])
    indices = sensitivity.analyse(exp, runs, num_resamples=50)
    final = indices[(indices["n"] == 256) & (indices["index"] == "ST")].set_index("parameter")["value"]
    # an additive function: each total index is its term's share of the variance, (slope x range)^2 / 12
    variance = {name: (slope * width(name)) ** 2 / 12
                for name, slope in (("rpiw_effect", 10), ("relapse_rate", 20))}
    total = sum(variance.values())
    assert final["rpiw_effect"] == pytest.approx(variance["rpiw_effect"] / total, abs=0.05)
    assert final["relapse_rate"] == pytest.approx(variance["relapse_rate"] / total, abs=0.05)
    assert abs(final["one_way_efficiency"]) < 0.01
    assert sorted(indices["n"].unique()) == [64, 128, 256]


def test_replicates_are_averaged_before_analysis(tmp_path):
    exp = experiment(tmp_path, parameters=THREE, design={"kind": "morris", "samples": 8},
                     outputs={"final": ["quality_final"]})
    runs = synthetic_runs(exp, lambda v: 5 * v["relapse_rate"])
    points = sample_points(exp)
    second = runs["replicate"] == 1  # replicate 1 also responds to rpiw_effect: the mean responds half as much
    runs.loc[second, "quality_final"] += 10 * points.loc[runs.loc[second, "point"], "rpiw_effect"].to_numpy() + 100
    indices = sensitivity.analyse(exp, runs, num_resamples=20)
    mu_star = indices[(indices["n"] == 8) & (indices["index"] == "mu_star")].set_index("parameter")["value"]
    # SALib's elementary effects are per unit of the scaled input (slope x range)
    assert mu_star["relapse_rate"] == pytest.approx(5.0 * width("relapse_rate"), rel=1e-6)
    assert mu_star["rpiw_effect"] == pytest.approx(5.0 * width("rpiw_effect"), rel=1e-6)
    assert mu_star["one_way_efficiency"] == pytest.approx(0.0, abs=1e-9)


def test_analysis_writes_csv_and_figures(tmp_path):
    exp = experiment(tmp_path, parameters=THREE, design={"kind": "morris", "samples": 4},
                     outputs={"final": ["quality_final"]})
    indices = sensitivity.analyse(exp, synthetic_runs(exp, lambda v: v["rpiw_effect"]), num_resamples=10)
    written = sensitivity.write_analysis(indices, tmp_path / "analysis")
    assert {p.name for p in written} == {"indices.csv", "summary.md", "morris_SATH.png", "convergence_SATH.png"}
    written_indices = pd.read_csv(tmp_path / "analysis" / "indices.csv")
    assert written_indices.shape[0] == len(indices) and "flags" in written_indices


def test_incomplete_results_are_refused(tmp_path):
    exp = experiment(tmp_path, parameters=THREE, design={"kind": "morris", "samples": 4},
                     outputs={"final": ["quality_final"]})
    runs = synthetic_runs(exp, lambda v: v["rpiw_effect"])
    with pytest.raises(Exception, match="sample points"):
        sensitivity.analyse(exp, runs[runs["point"] != 3])


def test_weighted_quantile_and_summary():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    assert weighted_quantile(values, np.full(4, 0.25), 0.5) == pytest.approx(2.5)
    assert weighted_quantile(values, np.array([0.0, 0.0, 0.0, 1.0]), 0.5) == pytest.approx(4.0)
    differences = pd.DataFrame({"variant": "v", "output": "quality_final", "weight": [0.1, 0.1, 0.4, 0.4],
                                "base": [1.0, 1.0, 1.0, 1.0], "value": [0.0, 2.0, 3.0, 3.0]})
    differences["difference"] = differences["value"] - differences["base"]
    row = summarise(differences).iloc[0]
    assert row["difference"] == pytest.approx(0.1 * -1 + 0.1 * 1 + 0.8 * 2)
    assert row["share_higher"] == pytest.approx(0.9)
    assert row["ci_low"] <= row["difference"] <= row["ci_high"]
