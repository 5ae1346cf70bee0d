"""Names of the model outputs an experiment can keep, and how a run's summary becomes one table row.

A run's summary (``RunResult.summary``) holds scalars plus two dicts: ``cqc`` (year -> rating) and
``survey`` (measure -> value). They are flattened to ``cqc_<year>`` and ``survey_<measure>``
columns so that every output is one column of the results table.
"""

from __future__ import annotations

import pandas as pd

from sim.errors import InputError
from sim.reporters import REPORTERS
from sim.survey import network_measures

FINAL_OUTPUTS = (
    "staff",
    "weeks",
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
    "reciprocity": "Reciprocity of all ties (share 0-1)",
    "trained_ties_reciprocity": "Reciprocity among trained staff (share 0-1)",
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
    """Measures of the emulated December 2018 survey (the keys sim.survey.network_measures returns)."""
    no_edges = pd.DataFrame({"source": pd.Series([], dtype="int64"), "target": pd.Series([], dtype="int64")})
    return tuple(network_measures(no_edges, []))


def is_known_final_output(name: str) -> bool:
    is_cqc_year = name.startswith("cqc_") and name[4:].isdigit() and len(name) == 8
    is_survey = name.startswith("survey_") and name.removeprefix("survey_") in survey_measures()
    return name in FINAL_OUTPUTS or is_cqc_year or is_survey


def is_numeric_output(name: str) -> bool:
    """CQC ratings are text; their ordinal score is ``cqc_latest_score``."""
    return name != "cqc_latest" and not (name.startswith("cqc_") and name[4:].isdigit())


def check_output_names(final: list[str], series: list[str], where: str) -> None:
    """Raise InputError naming ``where`` (file and field) for any unknown output name."""
    unknown_final = [name for name in final if not is_known_final_output(name)]
    if unknown_final:
        raise InputError(
            f"{where}: unknown output(s) {', '.join(unknown_final)} in outputs.final; "
            f"allowed: {', '.join(FINAL_OUTPUTS)}, cqc_<year> and "
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
