"""What users get out: run figures that say what they are, the ensemble's figures, compare's run count
and rating shares, a sweep's summary table, flagged sensitivity indices, and the scale check's verdicts.

Everything runs tiny (scale 0.02-0.05, early ends, two parameter sets or replicates)."""

import datetime as dt
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim.plots as plots
from sim.calibration.ensemble import ENSEMBLE_SERIES, run_posterior_ensemble
from sim.calibration.report import write_ensemble_figures
from sim.cli import main as orgsim
from sim.experiments import sensitivity
from sim.experiments.batch import read_runs
from sim.experiments.compare import CONFIRM_RUNS, SERIES, check_confirmed, describe_runs, load_parameter_sets
from sim.experiments.outputs import output_label
from sim.params import default_params
from test_experiments_designs import experiment, synthetic_runs
from test_experiments_helpers import REPO, run_cli, write_experiment

QUANTILE_COLUMNS = ["q05", "q25", "median", "q75", "q95"]


@pytest.fixture
def drawn(monkeypatch):
    """Every figure finished by sim.plots.finish, with its title and note, while still written to disk."""
    figures = []
    original = plots.finish

    def keep(fig, title, path, note=""):
        figures.append({"fig": fig, "title": title, "note": note, "path": Path(path),
                        "texts": [t.get_text() for ax in fig.axes for t in ax.texts]
                                 + [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]})
        original(fig, title, path, note)

    monkeypatch.setattr(plots, "finish", keep)
    return figures


def observed_marks(fig):
    """(x, y) of the observation markers (X) on a figure."""
    return [(x, y) for ax in fig.axes for line in ax.get_lines() if line.get_marker() == "X"
            for x, y in zip(line.get_xdata(), line.get_ydata())]


# -- one run per trust -----------------------------------------------------------------------------
def test_run_figures_say_uncalibrated_and_leave_out_trusts_without_a_survey(tmp_path, drawn):
    out = tmp_path / "run"
    assert orgsim(["run", "SATH", "SASH", "--scale", "0.05", "--end", "2017-06-30", "--out", str(out)]) == 0
    for png in ("training.png", "rpiws.png", "quality.png", "network.png", "comparison.png"):
        assert (out / png).stat().st_size > 1000
    assert not (out / "survey_networks.png").exists()     # the survey is in December 2018, after the end
    assert drawn and all("default parameters: uncalibrated" in f["note"] and "seed 1" in f["note"] for f in drawn)
    assert "stopped 2017-06-30" in drawn[0]["note"]


def test_a_run_at_other_parameters_is_not_called_default(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"parameters": {**default_params(), "rpiw_effect": 0.9},
                                                        "seed": 4, "scale": 0.1}))
    note = plots.run_note(tmp_path)
    assert "parameters from a file" in note and "default parameters" not in note and "seed 4" in note


def weekly(trust, quality):
    dates = pd.date_range("2015-07-01", "2021-03-31", freq="7D")
    return pd.DataFrame({"trust": trust, "date": dates.strftime("%Y-%m-%d"), "quality": quality})


def test_quality_figure_marks_the_published_ratings_at_their_inspections(tmp_path, drawn):
    frame = weekly("SATH", 0.5)
    summary = {"SATH": {"cqc": {"2018": "requires_improvement", "2020": "inadequate"},
                        "inspection_dates": ["2018-07-01", "2020-07-01"]}}
    plots.plot_quality(frame, summary, tmp_path / "quality.png", "note", plots.observations(["SATH"]))
    marks = observed_marks(drawn[0]["fig"])
    # SATH was rated inadequate at both (calibration/targets.yaml): the X sits in the inadequate band
    assert sorted(marks) == [(pd.Timestamp("2018-07-01"), 0.7), (pd.Timestamp("2020-07-01"), 0.7)]
    assert (tmp_path / "quality.png").stat().st_size > 1000


def test_a_trust_that_is_not_one_of_the_five_gets_no_observations():
    assert plots.observations(["my_trust"]) == {"my_trust": {"cqc": {}, "series": {}, "final": {}}}
    assert plots.observations(["SATH"])["SATH"]["series"]["rpiws"] == (dt.date(2019, 7, 31), 38.0)


def test_zero_bars_are_labelled_and_observations_marked(tmp_path, drawn):
    stats = {key: 5.0 for key in plots.COMPARED}
    summary = {"SATH": {**stats, "rpiws_2019_07": 0.0, "cqc_latest_score": 0}, "BHRUT": stats}
    plots.plot_comparison(summary, tmp_path / "comparison.png", "", plots.observations(summary))
    assert "0" in drawn[0]["texts"] and "5" in drawn[0]["texts"]
    assert (1, 38.0) not in observed_marks(drawn[0]["fig"])            # BHRUT is x=1; SATH (x=0) had 38
    assert (0, 38.0) in observed_marks(drawn[0]["fig"])
    titles = [ax.get_title() for ax in drawn[0]["fig"].axes]
    assert output_label("rpiws_2019_07") in titles and "(count)" in output_label("rpiws_2019_07")


def test_overlapping_lines_differ_in_style(tmp_path, drawn):
    frame = pd.concat([weekly(t, 1.0) for t in ("SASH", "LTHT", "UHCW")]).assign(
        **{c: 0.0 for c in ("l4l_complete", "l4l_in_progress", "alt_complete", "practising_share")})
    plots.plot_training(frame, tmp_path / "training.png")
    lines = [line for line in drawn[0]["fig"].axes[0].get_lines() if line.get_marker() != "X"]
    assert len({(line.get_linestyle(), line.get_marker(), line.get_color()) for line in lines}) == 3


def test_survey_panels_only_for_trusts_with_a_survey(tmp_path):
    pd.DataFrame({"source": [1, 2], "target": [2, 1]}).to_csv(tmp_path / "survey_network_SASH.csv", index=False)
    pd.DataFrame(columns=["source", "target"]).to_csv(tmp_path / "survey_network_SATH.csv", index=False)
    summary = {"SASH": {"survey": {"ties": 2}}, "SATH": {"survey": {}}, "UHCW": {"survey": {"ties": 1}}}
    assert plots.surveyed_trusts(tmp_path, summary) == ["SASH"]


def test_long_titles_are_wrapped_not_cut(tmp_path):
    fig = plots.plt.figure(figsize=(3, 2))
    fig.add_subplot()
    title = "A title far too long for a figure three inches wide " * 3
    plots.finish(fig, title, tmp_path / "t.png")
    assert fig._suptitle.get_text().count("\n") >= 2 and fig._suptitle.get_text().replace("\n", " ") == title.strip()


# -- the posterior ensemble ----------------------------------------------------------------------------
def test_ensemble_writes_bands_and_figures_that_can_be_redrawn_without_rerunning(tmp_path, capsys):
    posterior = tmp_path / "posterior_toy.csv"
    pd.DataFrame([{**default_params(), "rpiw_effect": v, "weight": w} for v, w in ((0.5, 0.3), (0.9, 0.7))]) \
        .to_csv(posterior, index=False)
    out = tmp_path / "ensemble"
    run_posterior_ensemble(posterior, ["SASH", "SATH"], out, seed=2, scale=0.03, progress=True)
    printed = capsys.readouterr().out
    assert "2 draws x 2 trust(s) = 4 runs at scale 0.03 with 1 worker(s)" in printed
    bands = pd.read_csv(out / "ensemble_series.csv")
    assert list(bands.columns) == ["trust", "variable", "week", "date", *QUANTILE_COLUMNS]
    assert list(dict.fromkeys(bands["variable"])) == list(ENSEMBLE_SERIES)
    assert set(bands["trust"]) == {"SASH", "SATH"} and bands["week"].max() > 250
    ordered = bands[QUANTILE_COLUMNS].to_numpy()
    assert (np.diff(ordered, axis=1) >= -1e-9).all()
    assert (bands["q95"] > bands["q05"]).any()                      # the two draws do differ
    for png in ("trajectories.png", "cqc_trajectories.png", "fit_targets.png"):
        assert (out / png).stat().st_size > 1000

    import shutil

    shutil.rmtree(out / "ensemble_runs")                            # no runs left: the figures come from the files
    redrawn = write_ensemble_figures(out, tmp_path / "again")
    assert [p.name for p in redrawn] == ["fit_targets.png", "cqc_trajectories.png", "trajectories.png"]
    assert all(p.stat().st_size > 1000 for p in redrawn)


# -- compare -------------------------------------------------------------------------------------------
def test_a_large_compare_is_refused_without_yes_and_nothing_is_written(tmp_path):
    out = tmp_path / "cmp"
    result = run_cli("compare", "SATH", "sath_stable_ceo", "--replicates", 201, "--scale", 0.02, "--out", out)
    assert result.returncode == 2
    assert "402 runs = 1 parameter set (the defaults" in result.stderr and "--yes" in result.stderr
    assert "--max-sets" in result.stderr and not out.exists()
    check_confirmed("a plan", CONFIRM_RUNS + 1, confirmed=True)   # --yes lets it through
    check_confirmed("a plan", CONFIRM_RUNS, confirmed=False)      # and the threshold itself needs none


def test_compare_plan_names_the_posterior_the_sets_and_the_scale():
    posterior = REPO / "calibration" / "posterior_main.csv"
    sets = load_parameter_sets(str(posterior), max_sets=3, seed=1)
    plan = describe_runs(sets, str(posterior), 3, 2, ["SATH", "sath_stable_ceo"], 0.25, dt.date(2019, 1, 1))
    assert plan == ("12 runs = 3 parameter set(s) from posterior_main.csv, drawn by weight (--max-sets 3) x "
                    "2 replicate(s) x 2 scenario(s), at scale 0.25, to 2019-01-01")


def test_compare_reports_rating_shares_and_bands_for_base_and_variant(tmp_path):
    out = tmp_path / "cmp"
    result = run_cli("compare", "SATH", "sath_half_rpiw_pace", "--replicates", 3, "--scale", 0.03, "--end",
                     "2019-01-01", "--outputs", "quality_final,rpiws_total", "--out", out, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "6 runs = 1 parameter set (the defaults, sim/parameters.yaml: uncalibrated) x 3 replicate(s) x " \
           "2 scenario(s), at scale 0.03, to 2019-01-01" in result.stdout
    shares = pd.read_csv(out / "cqc_shares.csv", dtype={"inspection": str})
    assert list(shares.columns) == ["scenario", "role", "inspection", "inadequate", "requires_improvement", "good",
                                    "outstanding", "runs"]
    assert set(shares["inspection"]) == {"2014", "2018", "latest"}      # SATH: July 2014 (pre-programme) and 2018
    assert set(shares["role"]) == {"base", "variant"} and (shares["runs"] == 3).all()
    assert np.allclose(shares[["inadequate", "requires_improvement", "good", "outstanding"]].sum(axis=1), 1.0)
    runs = read_runs(out)
    base_2018 = runs.loc[runs["arm"] == 0, "cqc_2018"]
    row = shares[(shares["role"] == "base") & (shares["inspection"] == "2018")].iloc[0]
    assert row["inadequate"] == pytest.approx((base_2018 == "inadequate").mean())
    bands = pd.read_csv(out / "series_bands.csv")
    assert list(dict.fromkeys(bands["variable"])) == list(SERIES) and set(bands["arm"]) == {0, 1}
    assert (bands["q05"] <= bands["q95"] + 1e-12).all()
    for png in ("compare.png", "cqc_shares.png", "compare_series.png"):
        assert (out / png).stat().st_size > 1000
    assert "share of runs at each CQC rating per inspection" in result.stdout


# -- sweep -----------------------------------------------------------------------------------------------
def test_sweep_writes_a_summary_table_and_a_figure(tmp_path):
    path = write_experiment(tmp_path, name="summarised", scenarios=["SATH"], replicates=3, end="2016-10-01",
                            parameters={"rpiw_effect": {"values": [0.4, 0.9]}},
                            scenario_factors={"ceo": {"stable": {"leadership": {"changes": []}}, "as_observed": {}}},
                            outputs={"final": ["quality_final", "engagement_mean_final", "cqc_latest"]})
    out = tmp_path / "out"
    result = run_cli("sweep", path, "--out", out, "--no-progress")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "summary.csv")
    assert {"case", "point", "scenario", "factor_ceo", "param_rpiw_effect", "output", "runs", "mean", "sd", "ci_low",
            "ci_high", "q05", "q95", "most_common", "share"} <= set(table.columns)
    assert len(table) == 2 * 2 * 3 and (table["runs"] == 3).all()          # 2 cases x 2 points x 3 outputs
    runs = read_runs(out)
    point = runs[(runs["case"] == "SATH/ceo=stable") & (runs["point"] == 1)]
    row = table[(table["case"] == "SATH/ceo=stable") & (table["point"] == 1) & (table["output"] == "quality_final")]
    assert row["mean"].iloc[0] == pytest.approx(point["quality_final"].mean(), rel=1e-5)
    assert row["q05"].iloc[0] <= row["mean"].iloc[0] <= row["q95"].iloc[0]
    rating = table[table["output"] == "cqc_latest"].iloc[0]
    assert rating["most_common"] in ("inadequate", "requires_improvement", "good", "outstanding")
    assert 1 / 3 <= rating["share"] <= 1
    text = (out / "summary.md").read_text()
    assert "| case | point | scenario | factor_ceo | param_rpiw_effect | quality_final |" in text
    assert text.count("| SATH/ceo=") == 4
    assert "parameters not varied at their defaults" in text
    assert (out / "sweep.png").stat().st_size > 1000


def test_a_sweep_over_a_posterior_says_its_fixed_parameters_are_the_posteriors_medians(tmp_path):
    posterior = pd.DataFrame([default_params()] * 2).assign(rpiw_effect=[0.5, 0.7], weight=[0.5, 0.5])
    posterior.to_csv(tmp_path / "posterior.csv", index=False)
    path = write_experiment(tmp_path, name="medians", replicates=1, end="2015-10-01",
                            posterior={"file": str(tmp_path / "posterior.csv")},
                            parameters={"cohort_ties": {"values": [1.0, 3.0]}})
    out = tmp_path / "out"
    result = run_cli("sweep", path, "--out", out, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"parameters not varied at the weighted medians of {tmp_path / 'posterior.csv'}" in (out / "summary.md").read_text()
    assert set(read_runs(out)["param_rpiw_effect"].round(6)) <= {0.5, 0.6, 0.7}


# -- sensitivity flags -------------------------------------------------------------------------------------
def index_rows(**columns):
    rows = pd.DataFrame(columns)
    for column, default in (("case", "SATH"), ("output", "quality_final"), ("method", "sobol"), ("runs", 10),
                            ("parameter_2", ""), ("rank", np.nan), ("rank_low", np.nan), ("rank_high", np.nan),
                            ("top_agreement", np.nan), ("top_stability", np.nan)):
        if column not in rows:
            rows[column] = default
    return rows


def test_flags_for_a_constructed_bad_index_table():
    indices = index_rows(
        n=[64, 64, 64, 64, 64, 16],
        parameter=["a", "b", "c", "d", "e", "a"],
        index=["ST", "S1", "ST", "ST", "ST", "ST"],
        value=[1.3, -0.2, 0.1, 0.5, 0.4, 1.5],
        conf=[0.1, 0.05, 0.3, 0.1, 0.1, 0.1],
        top_agreement=[1.0, np.nan, 1.0, 0.6, 0.95, np.nan],
        top_stability=[0.6, np.nan, 0.6, 0.6, 0.6, np.nan])
    flags = sensitivity.flag_indices(indices)["flags"].tolist()
    assert flags == ["outside [0,1]", "outside [0,1]", "CI wider than index", "rank not converged", "",
                     ""]        # the last is at N=16, not the final size: only the final indices are judged
    words = sensitivity.advice(sensitivity.flag_indices(indices), replicates=2)
    assert len(words) == 3
    assert "2 Sobol index(es) outside [0, 1]" in words[0] and "raise replicates (now 2)" in words[0]
    assert "double design.samples" in words[1] and "cannot be told from zero" in words[1]
    assert "as few as 60%" in words[2]


def test_morris_intervals_wider_than_mu_star_are_flagged_but_not_the_range():
    indices = index_rows(n=[8, 8], parameter=["a", "b"], index=["mu_star", "mu_star"], value=[3.0, 0.2],
                         conf=[0.5, 0.4], method="morris")
    assert sensitivity.flag_indices(indices)["flags"].tolist() == ["", "CI wider than index"]
    assert "trajectories r" in sensitivity.advice(sensitivity.flag_indices(indices))[0]


def test_ranking_of_a_clear_function_is_settled_and_of_noise_is_not(tmp_path):
    four = {"rpiw_effect": {}, "relapse_rate": {}, "one_way_efficiency": {}, "bottom_up_alignment": {}}
    exp = experiment(tmp_path, parameters=four, design={"kind": "sobol", "samples": 64},
                     outputs={"final": ["quality_final"]})
    clear = sensitivity.analyse(exp, synthetic_runs(exp, lambda v: 10 * v["rpiw_effect"] + 5 * v["relapse_rate"]
                                                    + 2 * v["one_way_efficiency"]), num_resamples=50)
    main = clear[(clear["index"] == "ST") & (clear["n"] == 64)].set_index("parameter")
    assert main.loc["rpiw_effect", "rank"] == 1 and (main["top_agreement"] >= 0.9).all()
    assert not main["flags"].str.contains("rank not converged").any()
    noise = sensitivity.analyse(exp, synthetic_runs(exp, lambda v: 0.0, noise=1.0), num_resamples=50)
    flagged = noise[(noise["index"] == "ST") & (noise["n"] == 64)]
    assert flagged["flags"].str.contains("rank not converged").any()
    assert flagged["top_stability"].iloc[0] < 0.9


def test_sensitivity_prints_flags_and_what_to_do(tmp_path):
    path = write_experiment(tmp_path, name="screened", replicates=1, end="2016-06-01",
                            parameters={"rpiw_effect": {}, "relapse_rate": {}, "culture_engagement_weight": {}},
                            design={"kind": "morris", "samples": 4, "seed": 1})
    out = tmp_path / "out"
    result = run_cli("sensitivity", path, "--out", out, "--no-progress", "--resamples", 20)
    assert result.returncode == 0, result.stderr
    assert "flags" in result.stdout.splitlines()[1] and "top_agreement" in result.stdout
    assert any(line.startswith("* ") for line in result.stdout.splitlines())
    written = pd.read_csv(out / "analysis" / "indices.csv")
    assert {"flags", "rank", "rank_low", "rank_high", "top_agreement", "top_stability"} <= set(written.columns)
    assert "## What to do" in (out / "analysis" / "summary.md").read_text() or \
        "No flags" in (out / "analysis" / "summary.md").read_text()


# -- the scale check -------------------------------------------------------------------------------------
def scale_check():
    spec = importlib.util.spec_from_file_location("scale_check", REPO / "benchmarks" / "scale_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scale_check_tells_safe_from_biased_and_noisy():
    check = scale_check()
    rng = np.random.default_rng(0)
    rows = []
    for scale in (0.1, 1.0):
        for seed in range(10):
            rows.append({"scenario": "SATH", "scale": scale, "seed": seed, "run_index": len(rows),
                         "steady": 100 + rng.normal(0, 1),                       # the same at both scales
                         "shifted": (130 if scale < 1 else 100) + rng.normal(0, 1),   # 30% off, far beyond noise
                         "noisy": (120 if scale < 1 else 100) + rng.normal(0, 60)})   # 20% off, lost in noise
    table = check.compare_with_full_scale(pd.DataFrame(rows))
    verdicts = {output: check.judge(group)[0] for (output, scale), group in table.groupby(["output", "scale"])
                if scale == 0.1}
    assert verdicts == {"steady": "safe", "shifted": "biased", "noisy": "noisy"}
    shifted = table[(table["output"] == "shifted") & (table["scale"] == 0.1)].iloc[0]
    assert shifted["relative_difference"] == pytest.approx(0.3, abs=0.02)
    assert "| `shifted` | 30% biased (SATH) |" in check.markdown(check.verdict_table(table), 10)
