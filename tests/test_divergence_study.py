"""The shipped divergence study (experiments/divergence_sash_sath.yaml, docs/divergence.md): its file validates, its
parameters come from the posterior as it says, and it runs at tiny size with the gap SASH - SATH analysed run for run."""

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.errors import InputError
from sim.experiments import sensitivity
from sim.experiments.compare import load_parameter_sets, weighted_quantile
from sim.experiments.designs import base_parameters, experiment_specs
from sim.experiments.schema import load_experiment
from test_experiments_helpers import REPO, run_cli, write_experiment

POSTERIOR = REPO / "calibration" / "posterior_main.csv"
STUDY = REPO / "experiments" / "divergence_sash_sath.yaml"


def test_the_study_file_validates_and_takes_its_parameters_from_the_posterior():
    study = load_experiment("divergence_sash_sath")
    assert study.design.kind == "sobol" and study.scale == 0.5 and study.replicates >= 2
    assert study.common_random_numbers and study.gaps == [("SASH", "SATH")]
    assert len(study.parameters) <= 8
    sets = load_parameter_sets(str(POSTERIOR))
    weights = sets["weight"].to_numpy()
    for name, variation in study.parameters.items():      # each over the posterior's weighted 5-95% range
        values = sets[name].to_numpy()
        assert variation.low == pytest.approx(weighted_quantile(values, weights, 0.05))
        assert variation.high == pytest.approx(weighted_quantile(values, weights, 0.95))
    params, trust_overrides = base_parameters(study)        # the rest at the posterior's weighted medians
    assert params["rpiw_effect"] == pytest.approx(weighted_quantile(sets["rpiw_effect"].to_numpy(), weights, 0.5))
    sash_pace = weighted_quantile(sets["SASH.programme.l4l_cohorts_per_year"].to_numpy(), weights, 0.5)
    sash_inputs = {}                                        # each free programme input, a dated change by its date
    for column in (column for column in sets.columns if column.startswith("SASH.programme.")):
        *path, field = column.split(".")[2:]
        node = sash_inputs
        for key in path:
            node = node.setdefault(key, {})
        node[field] = pytest.approx(weighted_quantile(sets[column].to_numpy(), weights, 0.5))
    assert "l4l_cohorts_per_year" in sash_inputs and "l4l_cohorts_per_year" in sash_inputs["changes"]["2019-01-01"]
    assert trust_overrides["SASH"] == {"programme": sash_inputs}
    specs = experiment_specs(study)
    sash = next(spec for spec in specs if spec.scenario == "SASH")
    assert sash.overrides["programme"]["l4l_cohorts_per_year"] == pytest.approx(sash_pace)
    screen = load_experiment("divergence_screen")             # the screen that chose the parameters
    assert set(study.parameters) <= set(screen.parameters) and screen.scale == study.scale


def test_the_study_runs_at_tiny_size_and_analyses_the_gap(tmp_path):
    data = yaml.safe_load(STUDY.read_text())
    data.update(name="divergence_tiny", scale=0.05, replicates=2, end="2016-06-30")
    data["design"]["samples"] = 4
    path = tmp_path / "divergence_tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    result = run_cli("sensitivity", path, "--out", out, "--no-progress", "--resamples", 10)
    assert result.returncode == 0, result.stderr
    indices = pd.read_csv(out / "analysis" / "indices.csv")
    assert set(indices["case"]) == {"SASH", "SATH", "SASH - SATH"}
    assert set(indices["output"]) == set(data["outputs"]["final"])
    gap = indices[(indices["case"] == "SASH - SATH") & (indices["index"] == "ST") & (indices["n"] == 4)]
    assert len(gap) == len(data["parameters"]) * len(data["outputs"]["final"])
    variance = pd.read_csv(out / "analysis" / "variance.csv")
    assert "SASH - SATH" in set(variance["case"])
    assert (out / "analysis" / "sobol_SASH_SATH.png").is_file() and (out / "analysis" / "gaps.png").is_file()
    gaps = pd.read_csv(out / "analysis" / "gaps.csv")
    assert list(gaps["output"]) == data["outputs"]["final"] and gaps["gap_mean"].notna().all()


def test_gaps_pair_the_runs_of_two_cases_at_the_same_point_and_replicate(tmp_path):
    experiment = load_experiment(str(write_experiment(tmp_path, scenarios=["SASH", "SATH"], gaps=[["SASH", "SATH"]],
                                                      outputs={"final": ["quality_final"]})))
    runs = pd.DataFrame([{"case": case, "point": p, "replicate": r, "quality_final": base + 10 * p + r}
                         for case, base in (("SATH", 1.0), ("SASH", 3.5)) for p in range(3) for r in range(2)])
    gap = sensitivity.with_gaps(experiment, runs.sample(frac=1, random_state=1))   # order does not matter
    gap = gap[gap["case"] == "SASH - SATH"]
    assert len(gap) == 6 and np.allclose(gap["quality_final"], 2.5)


@pytest.mark.parametrize("fields, words", [
    ({"gaps": [["SASH", "LTHT"]]}, "gaps[0]: SASH - LTHT: LTHT is not a case"),
    ({"gaps": [["SASH", "SASH"]]}, "give two different cases"),
    ({"posterior": {"file": "no/such.csv"}}, "posterior.file: no/such.csv not found"),
    ({"posterior": {"file": "calibration/posterior_main.csv", "range": [0.9, 0.1]}}, "range must be two quantiles"),
])
def test_bad_gaps_and_posteriors_are_refused(tmp_path, fields, words):
    path = write_experiment(tmp_path, scenarios=["SASH", "SATH"], **fields)
    with pytest.raises(InputError, match=words.replace("[", r"\[").replace("]", r"\]")):
        load_experiment(str(path))


def test_gap_table_gives_the_means_the_interval_and_the_spread(tmp_path):
    experiment = load_experiment(str(write_experiment(tmp_path, scenarios=["SASH", "SATH"], gaps=[["SASH", "SATH"]],
                                                      outputs={"final": ["quality_final"]})))
    rng = np.random.default_rng(0)
    runs = pd.DataFrame([{"case": case, "point": p, "replicate": r, "quality_final": base + p / 100 + rng.normal(0, .01)}
                         for case, base in (("SATH", 1.0), ("SASH", 3.0)) for p in range(100) for r in range(2)])
    table = sensitivity.gap_table(experiment, sensitivity.with_gaps(experiment, runs)).iloc[0]
    assert table["gap_mean"] == pytest.approx(2.0, abs=0.01) and table["points"] == 100
    assert table["mean_first"] - table["mean_second"] == pytest.approx(table["gap_mean"])
    assert table["q05"] <= table["ci_low"] < 2.0 < table["ci_high"] <= table["q95"]
