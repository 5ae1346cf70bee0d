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
