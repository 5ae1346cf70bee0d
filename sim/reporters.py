"""Weekly model reporters: plain functions of the model, collected by Mesa's DataCollector.

Counts are reported at full scale (divided by the model's scale factor)."""

from __future__ import annotations

import mesa
import numpy as np

from sim.quality import TERMS
from sim.staff import COMPLETE, IN_PROGRESS, NONE, average


def _count(model, mask) -> float:
    return float(np.count_nonzero(mask)) / model.scale


def date(model):
    return model.date.isoformat()


def staff(model):
    return model.staff.n / model.scale


def l4l_in_progress(model):
    return _count(model, model.staff.l4l == IN_PROGRESS)


def l4l_complete(model):
    return _count(model, model.staff.l4l == COMPLETE)


def l4l_dropouts(model):
    return model.training.dropouts / model.scale


def alt_in_progress(model):
    return _count(model, model.staff.alt == IN_PROGRESS)


def alt_complete(model):
    return _count(model, model.staff.alt == COMPLETE)


def l4l_cohorts_started(model):
    return len(model.training.cohort_sizes)


def practising_share(model):
    return average(model.staff.practising)


def capability_mean(model):
    return average(model.staff.capability)


def engagement_mean(model):
    return average(model.staff.engagement)


def engagement_untrained(model):
    untrained = (model.staff.l4l == NONE) & (model.staff.alt == NONE)
    return average(model.staff.engagement[untrained]) if untrained.any() else float("nan")


def morale_mean(model):
    return average(model.staff.morale)


def leavers(model):
    return model.leavers_total / model.scale


def rpiws(model):
    return model.improvement.held


def rpiws_cancelled(model):
    return model.improvement.cancelled


def value_streams(model):
    return model.improvement.value_streams


def lead_time_removed_share(model):
    measured = model.improvement.measured_by(model.week, measures=("lead_time",))
    return 1 - measured["lead_time_post"] / measured["lead_time_baseline"] if measured["n"] else 0.0


def quality(model):
    return model.quality


def ceo_commitment(model):
    return model.commitment


def instability(model):
    return model.instability


def regulatory_pressure(model):
    return float(model.ctx.pressure[model.week])


def covid(model):
    return bool(model.ctx.covid[model.week])


def kpo_capacity(model):
    return model.kpo_capacity(model.week)


def ties(model):
    """Number of ties (measured every RELATIONSHIPS_EVERY weeks, carried between)."""
    return model.network_measures["ties"] / model.scale


def network_arc_reciprocity(model):
    """Share of all ties whose reverse tie exists (arc reciprocity of the whole network; the survey's
    measures are in summary.json)."""
    return model.network_measures["arc_reciprocity"]


def trained_arc_reciprocity(model):
    """Arc reciprocity of ties among staff who carry the method (L4L, ALT, KPO)."""
    return model.network_measures["trained_arc_reciprocity"]


def practice(model):
    """Share practising x their capability: the practice term of the quality level."""
    return model.practice()


def value_stream_top_down(model):
    return model.value_stream_selection == "top_down"


def _contribution(term):
    def reporter(model):
        return model.contributions[term]
    reporter.__name__ = f"quality_contribution_{term}"
    reporter.__doc__ = f"This week's change of the quality index due to '{term}' (ODD 7.8)."
    return reporter


REPORTERS = {f.__name__: f for f in (
    date, staff, l4l_in_progress, l4l_complete, l4l_dropouts, alt_in_progress, alt_complete,
    l4l_cohorts_started, practising_share, capability_mean, engagement_mean, engagement_untrained,
    morale_mean, leavers, rpiws, rpiws_cancelled, value_streams, lead_time_removed_share, quality,
    ceo_commitment, instability, regulatory_pressure, covid, kpo_capacity, ties, network_arc_reciprocity,
    trained_arc_reciprocity, practice, value_stream_top_down, *(_contribution(term) for term in TERMS))}


# The census columns a run's summary reads (sim/runner.py, summarise): all that calibration collects, since it
# reads only summaries; the other reporters cost about a sixth of a calibration-size run.
SUMMARY_REPORTERS = ("date", "l4l_in_progress", "l4l_complete", "alt_in_progress", "alt_complete", "value_streams",
                     "rpiws", "quality", "engagement_mean", "practising_share", "morale_mean", "leavers")


class WeeklyCensus(mesa.DataCollector):
    """Mesa's DataCollector for REPORTERS, or those of them named in ``only`` (``get_model_vars_dataframe`` and
    the rest work as usual), without its deep copy of every value: each reporter returns an immutable scalar, so
    the copies protect nothing and cost a sixth of a calibration-size run."""

    def __init__(self, only: tuple[str, ...] | None = None):
        unknown = sorted(set(only or ()) - set(REPORTERS))
        if unknown:
            raise ValueError(f"census: unknown reporter(s) {unknown}; known: {sorted(REPORTERS)}")
        super().__init__(model_reporters={name: REPORTERS[name] for name in (only or REPORTERS)})

    def collect(self, model) -> None:
        self._collection_steps.append(model.time)
        for name, reporter in self.model_reporters.items():
            self.model_vars[name].append(reporter(model))
