"""Scenario discovery: the outcome parser and its errors, PRIM and CART on tables whose box is known, context
levers in experiment files, and `orgsim discover` end to end on a results folder in the batch format."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from sim.errors import InputError
from sim.experiments.designs import experiment_specs, sample_points
from sim.experiments.discover import choose_box, input_table, outcome_mask, run_cart, run_prim
from sim.experiments.schema import load_experiment
from test_experiments_helpers import run_cli, write_experiment

RATING_ROWS = ["inadequate", "requires_improvement", "good", "outstanding", "good"]


def outputs() -> pd.DataFrame:
    return pd.DataFrame({"quality_final": [0.5, 1.5, 2.5, 3.5, np.nan],
                         "practising_share_final": [0.05, 0.2, 0.08, 0.5, 0.3],
                         "cqc_2014": ["good", "good", "requires_improvement", "good", "good"],
                         "cqc_latest": RATING_ROWS})


def mask(expression, table=None):
    outcome, defined, used = outcome_mask(expression, outputs() if table is None else table, ["param_rpiw_effect"])
    return outcome.tolist(), defined.tolist(), used


# -- the outcome expression ----------------------------------------------------------------------------------
def test_numeric_conditions_combine_like_python_and_pandas():
    assert mask("practising_share_final < 0.1")[0] == [True, False, True, False, False]
    assert mask("practising_share_final < 0.1 and not quality_final > 1")[0] == [True, False, False, False, False]
    assert mask("(practising_share_final < 0.1) | (quality_final >= 3)")[0] == [True, False, True, True, False]
    assert mask("1 <= quality_final < 3")[0] == [False, True, True, False, False]
    assert mask("quality_final * 2 - 1 > 2")[0] == [False, False, True, True, False]
    assert mask("~(practising_share_final < 0.1)")[0] == [False, True, False, True, True]


def test_ratings_compare_in_their_order_and_against_other_rating_columns():
    assert mask("cqc_latest < cqc_2014")[0] == [True, True, False, False, False]          # declined since 2014
    assert mask("cqc_latest <= 'requires_improvement'")[0] == [True, True, False, False, False]
    assert mask("cqc_latest == 'good'")[0] == [False, False, True, False, True]
    assert mask("cqc_latest in ['inadequate', 'outstanding']")[0] == [True, False, False, True, False]
    assert mask("cqc_latest not in ('good',)")[0] == [True, True, False, True, False]


def test_a_run_without_a_value_is_undefined_not_false():
    outcome, defined, used = mask("not quality_final > 1")
    assert defined == [True, True, True, True, False]
    assert outcome == [True, False, False, False, False]      # ~(NaN > 1) would be True; the run is left out
    assert used == ["quality_final"]


@pytest.mark.parametrize("expression, named", [
    ("happiness < 1", "'happiness' is unknown column"),
    ("param_rpiw_effect > 0.5", "is an input of the design"),
    ("quality_final <", "not a valid expression"),
    ("__import__('os').system('true')", "is not allowed"),
    ("quality_final.real > 1", "is not allowed"),
    ("[x for x in quality_final]", "is not allowed"),
    ("quality_final + 1", "is not a condition"),
    ("cqc_latest == 'excellent'", "'excellent' is not a CQC rating"),
    ("cqc_latest > 1", "for numbers use cqc_latest_score"),
    ("cqc_latest + 1 > 2", "is not a number"),
    ("quality_final ** 2 > 1", "is not allowed"),
    ("   ", "--outcome is empty"),
])
def test_bad_expressions_name_the_option_and_what_is_wrong(expression, named):
    with pytest.raises(InputError) as error:
        mask(expression)
    assert "--outcome" in str(error.value) and named in str(error.value)


def test_unknown_column_error_lists_the_outputs():
    with pytest.raises(InputError) as error:
        mask("practising < 0.1")
    assert "practising_share_final" in str(error.value) and "quality_final" in str(error.value)


# -- PRIM and CART on a table with a known box ---------------------------------------------------------------
def known_box_table(n=800, seed=3):
    rng = np.random.default_rng(seed)
    runs = pd.DataFrame({"context_x1": rng.random(n), "context_x2": rng.random(n), "context_x3": rng.random(n),
                         "context_k": rng.integers(0, 5, n), "context_style": rng.choice(["a", "b", "c"], n),
                         "context_flag": rng.random(n) < 0.5})
    return runs


def test_prim_finds_a_known_box_within_tolerance():
    runs = known_box_table()
    y = ((runs["context_x1"] > 0.7) & (runs["context_x2"] < 0.3)).to_numpy()
    x = input_table(runs, list(runs.columns))
    _, found = run_prim(x, y, boxes=1, min_density=0.9, box_index=None, peel_alpha=0.05, paste_alpha=0.05,
                        mass_min=0.05)
    box = found[0]
    limits = {row["input"]: row for row in box["limits"]}
    assert set(limits) == {"context_x1", "context_x2"}
    assert limits["context_x1"]["box_low"] == pytest.approx(0.7, abs=0.03)
    assert limits["context_x1"]["box_high"] == pytest.approx(runs["context_x1"].max())
    assert limits["context_x2"]["box_high"] == pytest.approx(0.3, abs=0.03)
    assert all(row["significant"] and row["qp"] < 1e-6 for row in limits.values())
    assert box["stats"]["density"] >= 0.9 and box["stats"]["coverage"] >= 0.9


def test_prim_finds_a_level_of_a_categorical_input_and_a_second_box():
    runs = known_box_table(seed=4)
    first = (runs["context_style"] == "b") & (runs["context_x3"] > 0.6)
    second = runs["context_x1"] < 0.15
    y = (first | second).to_numpy()
    _, found = run_prim(input_table(runs, list(runs.columns)), y, boxes=2, min_density=0.9, box_index=None,
                        peel_alpha=0.05, paste_alpha=0.05, mass_min=0.05)
    rules = [{row["input"]: row for row in entry["limits"]} for entry in found]
    assert len(found) == 2
    described = {frozenset(r) for r in rules}
    assert frozenset({"context_style", "context_x3"}) in described and frozenset({"context_x1"}) in described
    style = next(r for r in rules if "context_style" in r)["context_style"]
    assert style["kind"] == "levels" and style["box"] == "b"


def test_restrictions_that_are_not_significant_are_freed_one_limit_at_a_time():
    """A noisy outcome (x0 > 0.6 in 70% of runs, 10% anywhere) over eight inputs: the picked box also trims noise
    inputs and the top of x0; freeing every limit with a quasi-p value of 0.05 or more leaves x0 >= 0.6."""
    rng = np.random.default_rng(7)
    runs = pd.DataFrame({f"context_x{i}": rng.random(600) for i in range(8)})
    y = (((runs["context_x0"] > 0.6) & (rng.random(600) < 0.7)) | (rng.random(600) < 0.1)).to_numpy()
    x = input_table(runs, list(runs.columns))
    kept = run_prim(x, y, 1, 0.8, None, 0.05, 0.05, 0.05, drop_insignificant=False)[1][0]
    freed = run_prim(x, y, 1, 0.8, None, 0.05, 0.05, 0.05)[1][0]
    assert freed["picked"] == kept["picked"] and len(kept["limits"]) > 1
    assert any(not row["significant"] for row in kept["limits"])
    assert [row["input"] for row in freed["limits"]] == ["context_x0"] and freed["limits"][0]["significant"]
    assert freed["limits"][0]["box_low"] == pytest.approx(0.6, abs=0.05) and np.isnan(freed["limits"][0]["qp_high"])
    assert {"input": "context_x0", "limit": "upper"} in [{k: d[k] for k in ("input", "limit")} for d in freed["dropped"]]
    assert all(d["qp"] >= 0.05 for d in freed["dropped"]) and freed["chosen"] > freed["picked"]
    assert freed["trajectory"].loc[freed["chosen"], "step"] == "drop"


def test_cart_leaf_recovers_the_box():
    runs = known_box_table()
    y = ((runs["context_x1"] > 0.7) & (runs["context_x2"] < 0.3)).to_numpy()
    _, leaves = run_cart(input_table(runs, list(runs.columns)), y, mass_min=0.05)
    best = leaves.sort_values("density", ascending=False).iloc[0]
    assert best["density"] == 1.0 and best["coverage"] == 1.0
    low = float(re.search(r"context_x1 >= ([0-9.]+)", best["rule"]).group(1))
    high = float(re.search(r"context_x2 <= ([0-9.]+)", best["rule"]).group(1))
    assert low == pytest.approx(0.7, abs=0.03) and high == pytest.approx(0.3, abs=0.03)
    assert best["restricted"] == 2


def test_box_choice_prefers_coverage_at_the_density_asked_and_falls_back_to_f1():
    trajectory = pd.DataFrame({"coverage": [1.0, 0.9, 0.7, 0.3], "density": [0.2, 0.6, 0.82, 0.95],
                               "res_dim": [0, 1, 2, 3]})
    assert choose_box(trajectory, 0.8)[0] == 2
    assert choose_box(trajectory, 0.9)[0] == 3
    index, why = choose_box(trajectory, 0.99)
    assert index == 2 and "F1" in why            # F1: 0.33, 0.72, 0.76, 0.46


# -- context levers in an experiment file --------------------------------------------------------------------
LEVERS = {
    "rpiws_per_year": {"path": "programme.rpiws_per_year", "low": 3, "high": 30},
    "kpo_staff": {"path": "programme.kpo_staff", "low": 3, "high": 6, "integer": True},
    "style": {"path": "regulation.style", "choices": ["relational", "traditional"]},
    "ceo": {"levels": {"stable": {"leadership": {"changes": []}},
                       "one": {"leadership": {"changes": [{"date": "2015-10-01", "kind": "permanent"}]}}}},
}


def lever_experiment(tmp_path, **fields):
    return load_experiment(str(write_experiment(tmp_path, scenarios=["generic_trust"], context=LEVERS,
                                                design={"kind": "latin_hypercube", "samples": 40, "seed": 2},
                                                **fields)))


def test_levers_are_sampled_with_the_design_and_set_the_scenario(tmp_path):
    specs = experiment_specs(lever_experiment(tmp_path))
    assert len(specs) == 40 and len(sample_points(lever_experiment(tmp_path)).columns) == 4
    labels = pd.DataFrame([s.labels for s in specs])
    assert labels["context_rpiws_per_year"].between(3, 30).all()
    assert sorted(labels["context_kpo_staff"].unique()) == [3, 4, 5, 6]          # whole numbers, ends included
    assert labels["context_style"].value_counts().tolist() == [20, 20]           # equal shares of the hypercube
    assert set(labels["context_ceo"]) == {"stable", "one"}
    for spec in specs:
        assert spec.overrides["programme"]["rpiws_per_year"] == spec.labels["context_rpiws_per_year"]
        assert spec.overrides["programme"]["kpo_staff"] == spec.labels["context_kpo_staff"]
        assert spec.overrides["regulation"]["style"] == spec.labels["context_style"]
        assert len(spec.overrides["leadership"]["changes"]) == (spec.labels["context_ceo"] == "one")


@pytest.mark.parametrize("lever, named", [
    ({"path": "programme.rpiws_per_year", "low": 3, "high": 30, "choices": [1, 2]}, "exactly one of"),
    ({"path": "programme.rpiws_per_year", "low": 30, "high": 3}, "low below high"),
    ({"levels": {"a": {}, "b": {}}, "path": "culture"}, "levels carry their own overrides"),
    ({"path": "programme.no_such_field", "low": 1, "high": 2}, "no_such_field"),
    ({"path": "programme.kpo_staff", "low": 3, "high": 30}, "integer"),
    ({"path": "regulation.style", "choices": ["relational", "friendly"]}, "friendly"),
])
def test_bad_levers_are_refused_naming_the_lever(tmp_path, lever, named):
    path = write_experiment(tmp_path, scenarios=["generic_trust"], context={"bad": lever},
                            design={"kind": "latin_hypercube", "samples": 4})
    with pytest.raises(InputError) as error:
        load_experiment(str(path))
    assert str(path) in str(error.value) and named in str(error.value)
    assert "bad" in str(error.value) or "context" in str(error.value)


def test_levers_need_a_sampled_design(tmp_path):
    path = write_experiment(tmp_path, scenarios=["generic_trust"], context={"style": LEVERS["style"]})
    with pytest.raises(InputError, match="use scenario_factors"):
        load_experiment(str(path))


def test_the_shipped_discovery_experiment_loads():
    experiment = load_experiment("discovery_generic_trust")
    assert experiment.design.kind == "latin_hypercube" and len(experiment.context) >= 8


# -- orgsim discover end to end ------------------------------------------------------------------------------
def write_results(folder, runs: pd.DataFrame) -> None:
    """A results folder in the batch format (runs/part-*.parquet and manifest.json), as `orgsim sweep` writes."""
    (folder / "runs").mkdir(parents=True)
    runs.to_parquet(folder / "runs" / "part-000000.parquet", index=False)
    (folder / "manifest.json").write_text(json.dumps({"kind": "orgsim batch", "fingerprint": "test",
                                                      "description": {"experiment": {"name": "constructed"}}}))


def constructed_runs(n=400):
    rng = np.random.default_rng(5)
    runs = known_box_table(n, seed=5).assign(run_index=range(n), scenario="generic_trust", case="generic_trust",
                                             point=np.arange(n) // 2, replicate=np.arange(n) % 2,
                                             param_rpiw_effect=0.6)
    fails = (runs["context_x1"] > 0.6) & (runs["context_style"] != "a")
    runs["practising_share_final"] = np.where(fails, 0.05, 0.3) + rng.normal(0, 0.01, n)
    runs["cqc_2014"] = "requires_improvement"
    runs["cqc_latest"] = np.where(fails, "inadequate", "good")
    return runs


def test_discover_cli_writes_the_report_tables_figures_and_manifest(tmp_path):
    write_results(tmp_path / "sweep", constructed_runs())
    out = tmp_path / "found"
    result = run_cli("discover", tmp_path / "sweep", "--outcome", "cqc_latest < cqc_2014", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "PRIM box 1" in result.stdout and "context_x1 >= 0.5" in result.stdout
    for name in ("report.md", "cases.csv", "prim_trajectory.csv", "prim_boxes.csv", "cart_leaves.csv",
                 "cart_tree.txt", "prim_tradeoff.png", "prim_box1.png", "prim_box1_inputs.png", "cart_tree.png",
                 "manifest.json"):
        assert (out / name).is_file(), name
    assert not (out / "prim_box1_pairs.png").exists()          # pairs of numeric restrictions only: one here
    boxes = pd.read_csv(out / "prim_boxes.csv")
    assert set(boxes["input"]) == {"context_x1", "context_style"}
    assert boxes.loc[boxes["input"] == "context_x1", "box_low"].iloc[0] == pytest.approx(0.6, abs=0.03)
    leaves = pd.read_csv(out / "cart_leaves.csv").set_index("rule")
    assert set(leaves.index) == {"context_x1 <= 0.5995", "context_x1 >= 0.5995 and context_style in {b, c}",
                                 "context_x1 >= 0.5995 and context_style in {a}"}
    assert leaves.loc["context_x1 >= 0.5995 and context_style in {b, c}", "density"] == 1.0
    assert set(boxes.loc[boxes["input"] == "context_style", "box"].iloc[0].split(", ")) == {"b", "c"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs_with_outcome"] == int((constructed_runs()["cqc_latest"] == "inadequate").sum())
    assert manifest["results"] == {"folder": str(tmp_path / "sweep"), "fingerprint": "test", "git_commit": None,
                                   "experiment": "constructed"}
    assert "param_rpiw_effect" not in manifest["inputs"] and manifest["outcome"] == "cqc_latest < cqc_2014"
    cases = pd.read_csv(out / "cases.csv")
    assert cases.loc[cases["prim_box"] == 1, "outcome"].mean() > 0.95
    report = (out / "report.md").read_text()
    assert "cqc_latest < cqc_2014" in report and "quasi-p" in report and "![CART tree](cart_tree.png)" in report


@pytest.mark.parametrize("arguments, named", [
    (["--outcome", "quality < 1"], "unknown column"),
    (["--outcome", "practising_share_final < 10"], "holds in 400 of 400 runs"),
    (["--outcome", "practising_share_final < 0.1", "--inputs", "context_x1,param_rpiw_effect"], "does not vary"),
    (["--outcome", "practising_share_final < 0.1", "--box", "999"], "--box 999"),
])
def test_discover_cli_refuses_bad_input_with_exit_2_and_writes_nothing(tmp_path, arguments, named):
    write_results(tmp_path / "sweep", constructed_runs())
    result = run_cli("discover", tmp_path / "sweep", *arguments, "--out", tmp_path / "found")
    assert result.returncode == 2 and named in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "found").exists()


def test_discover_cli_refuses_a_folder_without_results(tmp_path):
    result = run_cli("discover", tmp_path, "--outcome", "quality_final < 1")
    assert result.returncode == 2 and "not a sweep's results folder" in result.stderr


def test_discover_runs_an_experiment_first_then_finds_the_rpiw_pace(tmp_path, monkeypatch):
    """Given an experiment, `orgsim discover` runs it (24 runs of the generic trust over four levers, scale 0.05, to
    January 2017) into results/<name>, then explains the outcome: many RPIWs held where the planned pace is high.
    A second call reuses the finished runs; an outcome naming an output the experiment does not keep is refused
    before any run."""
    monkeypatch.chdir(tmp_path)
    path = write_experiment(tmp_path, name="tiny_levers", scenarios=["generic_trust"], context=LEVERS, scale=0.05,
                            end="2017-01-01", design={"kind": "latin_hypercube", "samples": 24, "seed": 2},
                            outputs={"final": ["rpiws_total", "quality_final", "cqc_latest"]})
    refused = run_cli("discover", path, "--outcome", "practising_share_final < 0.1")
    assert refused.returncode == 2 and "unknown column" in refused.stderr and not (tmp_path / "results").exists()
    everywhere = run_cli("discover", path, "--outcome", "rpiws_total >= 0", "--no-progress")
    assert everywhere.returncode == 2 and "holds in 24 of 24 runs" in everywhere.stderr
    runs = pd.read_parquet(next((tmp_path / "results" / "tiny_levers" / "runs").glob("part-*.parquet")))
    threshold = runs["rpiws_total"].quantile(0.7)
    result = run_cli("discover", path, "--outcome", f"rpiws_total > {threshold}", "--mass-min", "0.1",
                     "--out", tmp_path / "found", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "0 runs computed, 24 reused" in result.stdout
    boxes = pd.read_csv(tmp_path / "found" / "prim_boxes.csv")
    pace = boxes[boxes["input"] == "context_rpiws_per_year"]
    assert len(pace) == 1 and pace["box_low"].iloc[0] > 10


def test_discover_names_a_path_that_is_neither_results_nor_an_experiment(tmp_path):
    result = run_cli("discover", tmp_path / "nothing_here", "--outcome", "quality_final < 1")
    assert result.returncode == 2 and "is not a results folder" in result.stderr
