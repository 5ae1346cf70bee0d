"""Each mechanism's contribution to the quality index: one run's figure, an ensemble's table and figure."""

import numpy as np
import pandas as pd
import pytest

from sim.contributions import (TOTAL, contribution_samples, contribution_terms, cumulative_contributions,
                               ensemble_contributions, final_contributions, plot_contributions,
                               plot_ensemble_contributions, write_ensemble_contributions)
from sim.experiments.outputs import flatten_summary

PNG = b"\x89PNG"


def weekly_frame(per_week: dict[str, dict[str, float]], weeks: int = 52) -> pd.DataFrame:
    """A timeseries with constant weekly contributions per trust and term (terms in the given order)."""
    frames = []
    for trust, terms in per_week.items():
        frame = pd.DataFrame({"trust": trust, "week": range(weeks),
                              "date": pd.date_range("2015-07-01", periods=weeks, freq="7D").strftime("%Y-%m-%d"),
                              "quality": 2.0})
        for term, value in terms.items():
            frame[f"quality_contribution_{term}"] = value
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


RISE_AND_FALL = {"SASH": {"settling": -0.01, "engagement": 0.02, "practice": 0.01},
                 "SATH": {"settling": 0.005, "engagement": -0.02, "practice": -0.001}}


def test_terms_are_read_from_the_columns_in_order():
    frame = weekly_frame({"SASH": {"zeta": 0.0, "alpha": 0.0, "support": 0.0}})
    assert contribution_terms(frame.columns) == ["zeta", "alpha", "support"]


def test_cumulative_and_final_contributions_per_trust():
    frame = weekly_frame(RISE_AND_FALL, weeks=52)
    cumulative = cumulative_contributions(frame)
    sash = cumulative[cumulative["trust"] == "SASH"]
    assert sash["engagement"].tolist() == pytest.approx([0.02 * (week + 1) for week in range(52)])
    finals = final_contributions(frame)
    assert finals.loc["SATH"].tolist() == pytest.approx([0.26, -1.04, -0.052])
    assert list(finals.index) == ["SASH", "SATH"]


def test_run_figure_is_drawn_and_skipped_without_contributions(tmp_path):
    path = plot_contributions(weekly_frame(RISE_AND_FALL), tmp_path / "contributions.png")
    assert path.read_bytes().startswith(PNG)
    assert plot_contributions(weekly_frame({"SASH": {}}), tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def ensemble_summaries(runs: int = 101) -> list[dict]:
    """SASH's engagement term runs 0..1 over the runs, its settling term is -0.5; SATH's engagement -1."""
    summaries = []
    for run in range(runs):
        summaries.append({"trust": "SASH", "quality_contributions": {"engagement": run / (runs - 1), "settling": -0.5}})
        summaries.append({"trust": "SATH", "quality_contributions": {"engagement": -1.0, "settling": 0.25}})
    return summaries


def test_ensemble_quantiles_per_trust_and_term():
    table = ensemble_contributions(ensemble_summaries()).set_index(["trust", "term"])
    engagement = table.loc[("SASH", "engagement")]
    assert engagement["runs"] == 101
    assert engagement[["median", "q05", "q95"]].tolist() == pytest.approx([0.5, 0.05, 0.95], abs=0.006)
    assert table.loc[("SATH", "engagement"), ["median", "q05", "q95"]].tolist() == pytest.approx([-1.0] * 3)
    assert table.loc[("SATH", TOTAL), "median"] == pytest.approx(-0.75)
    assert table.loc[("SASH", TOTAL), "mean"] == pytest.approx(0.0)


def test_nested_and_flattened_summaries_agree_and_weights_count():
    nested = ensemble_summaries(11)
    flat = [{**flatten_summary(summary), "draw_weight": 1.0} for summary in nested]
    assert "quality_contributions_engagement" in flat[0]
    assert ensemble_contributions(nested).equals(ensemble_contributions(pd.DataFrame(flat)))
    weighted = [{"trust": "SASH", "quality_contributions": {"x": value}, "weight": weight}
                for value, weight in ((0.0, 0.9), (1.0, 0.1))]
    assert ensemble_contributions(weighted).set_index("term").loc["x", "mean"] == pytest.approx(0.1)
    assert contribution_samples([{"trust": "SASH", "quality_final": 1.0}]).empty


def test_ensemble_figure_and_files(tmp_path):
    table = ensemble_contributions(ensemble_summaries())
    assert plot_ensemble_contributions(table, tmp_path / "ensemble.png").read_bytes().startswith(PNG)
    written = write_ensemble_contributions(ensemble_summaries(), tmp_path / "out")
    assert [path.name for path in written] == ["contributions.csv", "contributions.png"]
    assert set(pd.read_csv(written[0])["term"]) == {"engagement", "settling", TOTAL}
    assert write_ensemble_contributions([{"trust": "SASH"}], tmp_path / "empty") == []
    assert np.isfinite(table[["mean", "median", "q05", "q95"]].to_numpy()).all()
