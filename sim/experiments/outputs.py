"""Names of the model outputs an experiment can keep, and how a run's summary becomes one table row.

A run's summary (``RunResult.summary``) holds scalars plus two dicts: ``cqc`` (year -> rating) and
``survey`` (measure -> value). They are flattened to ``cqc_<year>`` and ``survey_<measure>``
columns so that every output is one column of the results table.
"""

from __future__ import annotations

from sim.errors import InputError
from sim.reporters import REPORTERS

FINAL_OUTPUTS = (
    "staff",
    "l4l_complete_2021_03",
    "l4l_in_progress_2021_03",
    "alt_complete_2021_03",
    "value_streams_2019_07",
    "rpiws_2019_07",
    "lead_time_baseline_hours",
    "lead_time_post_hours",
    "lead_time_reduction",
    "quality_final",
    "engagement_mean_final",
    "morale_final",
    "cqc_latest",
    "cqc_latest_score",
)
"""Scalar summary outputs. ``cqc_<year>`` and ``survey_<measure>`` are accepted as well."""

FLATTENED_PREFIXES = ("cqc_", "survey_")

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


def is_known_final_output(name: str) -> bool:
    return name in FINAL_OUTPUTS or (name.startswith(FLATTENED_PREFIXES) and len(name) > 5)


def is_numeric_output(name: str) -> bool:
    """CQC ratings are text; their ordinal score is ``cqc_latest_score``."""
    return name != "cqc_latest" and not (name.startswith("cqc_") and name[4:].isdigit())


def check_output_names(final: list[str], series: list[str], where: str) -> None:
    """Raise InputError naming ``where`` (file and field) for any unknown output name."""
    unknown_final = [name for name in final if not is_known_final_output(name)]
    if unknown_final:
        raise InputError(
            f"{where}: unknown output(s) {', '.join(unknown_final)} in outputs.final; "
            f"allowed: {', '.join(FINAL_OUTPUTS)}, cqc_<year>, survey_<measure>"
        )
    unknown_series = [name for name in series if name not in known_series_outputs()]
    if unknown_series:
        raise InputError(
            f"{where}: unknown output(s) {', '.join(unknown_series)} in outputs.series; "
            f"allowed: {', '.join(known_series_outputs())}"
        )


def known_series_outputs() -> tuple[str, ...]:
    """The model's weekly reporters (sim/reporters.py)."""
    return tuple(REPORTERS)
