"""Names of the model outputs (with their meaning and unit), how a run's summary becomes one table row, and a
sweep's summary table (per design point, the mean and interval of each output).

A run's summary (``RunResult.summary``) holds scalars plus two dicts: ``cqc`` (year -> rating) and
``survey`` (measure -> value). They are flattened to ``cqc_<year>`` and ``survey_<measure>``
columns so that every output is one column of the results table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.quality import TERMS as QUALITY_TERMS
from sim.reporters import REPORTERS
from sim.survey import MEASURES as SURVEY_MEASURES

FINAL_OUTPUTS = (
    "staff",
    "weeks",
    "l4l_participants_2018_11",
    "l4l_participants_2018_12",
    "l4l_complete_2021_03",
    "l4l_in_progress_2021_03",
    "alt_complete_2021_03",
    "alt_in_progress_2021_03",
    "value_streams_2019_07",
    "rpiws_2019_07",
    "rpiws_measured_2019_07",
    "lead_time_baseline_hours",
    "lead_time_post_hours",
    "lead_time_reduction",
    "rpiws_total",
    "rpiws_cancelled",
    "quality_final",
    "engagement_mean_final",
    "practising_share_final",
    "morale_final",
    "leavers_total",
    "cqc_latest",
    "cqc_latest_score",
)
"""Scalar outputs of a run summary (sim.runner.summarise); ``cqc_<year>`` and ``survey_<measure>`` too."""

DEFAULT_COMPARE_OUTPUTS = (
    "quality_final",
    "engagement_mean_final",
    "morale_final",
    "cqc_latest_score",
    "l4l_complete_2021_03",
    "rpiws_2019_07",
    "lead_time_reduction",
)


# What each output means and its unit, for figure titles and axes. Counts are of staff (or workshops)
# at full scale whatever the run's scale. An output without an entry is shown by its name.
OUTPUT_LABELS = {
    "staff": "Staff (headcount)",
    "weeks": "Weeks simulated",
    "l4l_participants_2018_11": "L4L participants, Nov 2018 (staff)",
    "l4l_participants_2018_12": "L4L participants, Dec 2018 (staff)",
    "l4l_complete_2021_03": "L4L complete, Mar 2021 (staff)",
    "l4l_in_progress_2021_03": "L4L in progress, Mar 2021 (staff)",
    "alt_complete_2021_03": "ALT complete, Mar 2021 (staff)",
    "alt_in_progress_2021_03": "ALT in progress, Mar 2021 (staff)",
    "value_streams_2019_07": "Value streams by Jul 2019 (count)",
    "rpiws_2019_07": "RPIWs by Jul 2019 (count)",
    "rpiws_measured_2019_07": "RPIWs with lead-time measures, Jul 2019 (count)",
    "lead_time_baseline_hours": "Lead time before RPIWs (hours)",
    "lead_time_post_hours": "Lead time after RPIWs (hours)",
    "lead_time_reduction": "Lead-time reduction, RPIWs to Jul 2019 (share 0-1)",
    "rpiws_total": "RPIWs held, whole run (count)",
    "rpiws_cancelled": "RPIWs cancelled, whole run (count)",
    "quality_final": "Quality index at the end (CQC band limits at 1, 2, 3)",
    "engagement_mean_final": "Mean engagement at the end (0-1)",
    "practising_share_final": "Share of staff practising at the end (0-1)",
    "morale_final": "Mean morale at the end (0-1)",
    "leavers_total": "Leavers, whole run (staff)",
    "cqc_latest_score": "Latest CQC rating (0 inadequate .. 3 outstanding)",
}
SERIES_LABELS = {
    "quality": "Quality index (CQC band limits at 1, 2, 3)",
    "practising_share": "Share of staff practising (0-1)",
    "l4l_complete": "L4L complete (staff)",
    "l4l_in_progress": "L4L in progress (staff)",
    "alt_complete": "ALT complete (staff)",
    "alt_in_progress": "ALT in progress (staff)",
    "rpiws": "RPIWs held, cumulative",
    "rpiws_cancelled": "RPIWs cancelled, cumulative",
    "value_streams": "Value streams opened",
    "lead_time_removed_share": "Lead time removed (share 0-1)",
    "engagement_mean": "Mean engagement (0-1)",
    "morale_mean": "Mean morale (0-1)",
    "network_arc_reciprocity": "Reciprocity of all ties (arc share 0-1)",
    "trained_arc_reciprocity": "Reciprocity among staff who carry the method (arc share 0-1)",
    "ties": "Ties (count)",
    "ceo_commitment": "CEO commitment (0-1)",
    "regulatory_pressure": "Regulatory pressure (0-1)",
}


def output_label(name: str) -> str:
    """A summary output's meaning and unit (``cqc_<year>`` and ``survey_<measure>`` by pattern)."""
    if name in OUTPUT_LABELS:
        return OUTPUT_LABELS[name]
    if name.startswith("cqc_") and name[4:].isdigit():
        return f"CQC rating, {name[4:]} inspection"
    if name.startswith("survey_"):
        return f"Dec 2018 survey: {name[7:].replace('_', ' ')}"
    if name.startswith("quality_contributions_"):
        return f"{name[22:]}: its part of the change in quality (bands)"
    return name


def series_label(name: str) -> str:
    return SERIES_LABELS.get(name, name.replace("_", " "))


def flatten_summary(summary: dict) -> dict:
    """One flat dict of scalars from a run summary (``cqc`` and ``survey`` dicts become prefixed keys)."""
    row = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            for inner_key, inner_value in value.items():
                row[f"{key}_{inner_key}"] = inner_value
        else:
            row[key] = value
    return row


def survey_measures() -> tuple[str, ...]:
    """Measures of the emulated December 2018 survey (sim/survey.py: those of the network and who was named)."""
    return SURVEY_MEASURES


def is_known_final_output(name: str) -> bool:
    is_cqc_year = name.startswith("cqc_") and name[4:].isdigit() and len(name) == 8
    is_survey = name.startswith("survey_") and name.removeprefix("survey_") in survey_measures()
    is_contribution = name.startswith("quality_contributions_") and name[22:] in QUALITY_TERMS   # a mechanism's part
    return name in FINAL_OUTPUTS or is_cqc_year or is_survey or is_contribution


def is_numeric_output(name: str) -> bool:
    """CQC ratings are text; their ordinal score is ``cqc_latest_score``."""
    return name != "cqc_latest" and not (name.startswith("cqc_") and name[4:].isdigit())


def check_output_names(final: list[str], series: list[str], where: str) -> None:
    """Raise InputError naming ``where`` (file and field) for any unknown output name."""
    unknown_final = [name for name in final if not is_known_final_output(name)]
    if unknown_final:
        raise InputError(
            f"{where}: unknown output(s) {', '.join(unknown_final)} in outputs.final; "
            f"allowed: {', '.join(FINAL_OUTPUTS)}, quality_contributions_<term> for {', '.join(QUALITY_TERMS)}, "
            "cqc_<year> and "
            f"survey_<measure> for {', '.join(survey_measures())}"
        )
    unknown_series = [name for name in series if name not in known_series_outputs()]
    if unknown_series:
        raise InputError(
            f"{where}: unknown output(s) {', '.join(unknown_series)} in outputs.series; "
            f"allowed: {', '.join(known_series_outputs())}"
        )


def known_series_outputs() -> tuple[str, ...]:
    """The model's weekly reporters (sim/reporters.py) and the CQC band read from quality each week."""
    return (*REPORTERS, "cqc_band")


# -- a sweep's summary: per design point, the mean and interval of each output ----------------------
POINT_KEYS = ("case", "point")


def varied_inputs(runs: pd.DataFrame) -> list[str]:
    """The design's inputs that vary between runs: scenario factors (``factor_*``), context levers (``context_*``)
    and parameters (``param_*``)."""
    return [c for prefix in ("factor_", "context_", "param_") for c in runs.columns
            if c.startswith(prefix) and runs[c].nunique(dropna=False) > 1]


def design_point_summary(runs: pd.DataFrame, outputs: list[str]) -> pd.DataFrame:
    """Long table: one row per design point (case x point) and output, over its replicates.

    Numbers: ``mean``, ``sd``, ``ci_low``/``ci_high`` (95% interval of the mean, normal approximation)
    and ``q05``/``q95`` (where 90% of the replicates fall). Ratings (text): ``most_common`` and its ``share``.
    """
    keys = [*POINT_KEYS, "scenario", *varied_inputs(runs)]
    rows = []
    for point, group in runs.groupby(list(POINT_KEYS), sort=False):   # in run order: the design's order
        described = {key: group[key].iloc[0] for key in keys if key in group}
        for output in outputs:
            values = group[output].dropna()
            row = {**described, "output": output, "runs": len(values)}
            if is_numeric_output(output):
                values = values.astype(float)
                half = 1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.nan
                row.update(mean=values.mean(), sd=values.std(ddof=1), ci_low=values.mean() - half,
                           ci_high=values.mean() + half, q05=values.quantile(0.05), q95=values.quantile(0.95))
            elif len(values):
                counts = values.value_counts(normalize=True)
                row.update(most_common=counts.index[0], share=float(counts.iloc[0]))
            rows.append(row)
    return pd.DataFrame(rows)


def summary_markdown(table: pd.DataFrame, title: str) -> str:
    """One row per design point, one column per output: mean [5%, 95% of replicates], or a rating and its share."""
    keys = [c for c in table.columns if c in (*POINT_KEYS, "scenario") or c.startswith(("factor_", "context_", "param_"))]
    outputs = list(dict.fromkeys(table["output"]))
    lines = [f"# {title}", "", "Per design point over its replicates: mean [5%, 95%] of the runs for numbers; "
             "for a rating the most common one and its share of runs. 95% intervals of the means are in summary.csv.",
             "", "| " + " | ".join([*keys, *outputs]) + " |", "|" + "---|" * (len(keys) + len(outputs))]
    for _, point in table.groupby(list(POINT_KEYS), sort=False):
        first = point.iloc[0]
        cells = [_cell(first[k]) for k in keys]
        by_output = point.set_index("output")
        for output in outputs:
            r = by_output.loc[output]
            is_rating = isinstance(r.get("most_common"), str)
            cells.append(f"{r['most_common']} {r['share']:.0%}" if is_rating
                         else f"{r['mean']:.3g} [{r['q05']:.3g}, {r['q95']:.3g}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_sweep_summary(runs: pd.DataFrame, outputs: list[str], out_dir, title: str) -> list:
    """summary.csv, summary.md and sweep.png (each numeric output against each varied input) in ``out_dir``."""
    from pathlib import Path

    from sim.experiments.figures import plot_sweep, save

    out_dir = Path(out_dir)
    table = design_point_summary(runs, outputs)
    written = [out_dir / "summary.csv", out_dir / "summary.md"]
    table.to_csv(written[0], index=False, float_format="%.6g")
    written[1].write_text(summary_markdown(table, title))
    inputs = varied_inputs(runs) or (["scenario"] if runs["scenario"].nunique() > 1 else [])
    if inputs and any(is_numeric_output(o) for o in outputs):
        written.append(save(plot_sweep(runs, outputs, inputs, title), out_dir / "sweep.png"))
    return written
