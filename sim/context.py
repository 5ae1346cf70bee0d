"""The trust's context as weekly timelines, computed once from the scenario.

Everything exogenous (calendar, CEO timeline, regulatory pressure, COVID-19, programme plan) is
an array indexed by week, so the weekly step only reads it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from sim.scenario import Scenario

WEEK = dt.timedelta(days=7)
# The NHS-wide decline of performance against standards is counted from the start of the CQC's
# rating regime (first inspections under it: October 2013; CQC 2013, "A new start"), the same date
# for every trust.
SYSTEM_DECLINE_FROM = dt.date(2013, 10, 1)
# regimes that bring an improvement director and a partner trust, not only pressure (ODD 7.1)
TURNAROUND_KINDS = {"special_measures_quality", "special_measures_finance"}


def week_of(scenario: Scenario, date: dt.date) -> int:
    """Index of the week containing ``date`` (negative before the start)."""
    return (date - scenario.start).days // 7


@dataclass(frozen=True)
class Context:
    dates: list[dt.date]
    programme_active: np.ndarray      # bool
    covid: np.ndarray                 # bool, from the COVID-19 start on
    pressure: np.ndarray              # 0-1, regulatory pressure x regulator style
    turnaround_support: np.ndarray    # 0/1, in special measures (improvement director, partner trust)
    ceo_kind: np.ndarray              # 0 permanent, 1 interim/acting (also leave)
    ceo_tenure: np.ndarray            # weeks since the current permanent CEO arrived
    ceo_l4l_due: np.ndarray           # bool, from the date the scenario says the CEO joins L4L
    ceo_change: np.ndarray            # bool, a CEO change happens this week
    l4l_cohorts_per_year: np.ndarray
    alt_places_per_year: np.ndarray
    rpiws_per_year: np.ndarray
    kpo_staff: np.ndarray
    culture: np.ndarray               # culture index 0-1 (grows while values work goes on)
    system_years: np.ndarray          # years since SYSTEM_DECLINE_FROM (NHS-wide decline)

    @property
    def weeks(self) -> int:
        return len(self.dates)


def _step_series(weeks: int, start_value: float, changes: list[tuple[int, float]]) -> np.ndarray:
    series = np.full(weeks, float(start_value))
    for week, value in sorted(changes):
        series[max(week, 0):] = value
    return series


def build_context(scenario: Scenario, params: dict[str, float], end: dt.date | None = None) -> Context:
    last = min(end or scenario.end, scenario.end)
    n = max(week_of(scenario, last) + 1, 1)
    dates = [scenario.start + i * WEEK for i in range(n)]
    week = np.arange(n)
    wk = lambda d: week_of(scenario, d)  # noqa: E731

    style = 1.0 if scenario.regulation.style == "traditional" else params["relational_pressure_factor"]
    pressure = np.zeros(n)
    turnaround_support = np.zeros(n)
    for episode in scenario.regulation.episodes:
        during = (week >= wk(episode.start)) & (week <= wk(episode.end))
        pressure[during] = style
        if episode.kind in TURNAROUND_KINDS:
            turnaround_support[during] = 1.0

    ceo_kind = np.zeros(n, dtype=np.int8)
    ceo_tenure = (week - wk(scenario.leadership.ceo_in_post_since)).astype(float)
    ceo_change = np.zeros(n, dtype=bool)
    for change in sorted(scenario.leadership.changes, key=lambda c: c.date):
        w = max(wk(change.date), 0)
        if w >= n:
            continue
        ceo_change[w] = True
        ceo_kind[w:] = 0 if change.kind == "permanent" else 1
        if change.kind == "permanent":
            ceo_tenure[w:] = week[w:] - w
    joins = scenario.leadership.ceo_joins_l4l
    ceo_l4l_due = week >= wk(joins) if joins else np.zeros(n, dtype=bool)

    prog = scenario.programme
    plan = {field: [(wk(c.date), getattr(c, field)) for c in prog.changes if getattr(c, field) is not None]
            for field in ("l4l_cohorts_per_year", "alt_places_per_year", "rpiws_per_year", "kpo_staff")}
    programme_active = week >= wk(prog.start)   # no KPO, training or RPIWs before the programme
    covid = week >= wk(scenario.covid_start) if scenario.covid_start else np.zeros(n, dtype=bool)
    years = np.full(n, scenario.culture.values_work_years_before)
    if scenario.culture.values_work_during:
        period = scenario.culture.values_work_during
        years += np.clip(week - wk(period.start), 0, wk(period.end) - wk(period.start)) / 52.0
    culture = culture_index(years, scenario.culture.levers(), params)
    return Context(
        dates=dates,
        programme_active=programme_active,
        covid=covid,
        pressure=pressure,
        turnaround_support=turnaround_support,
        ceo_kind=ceo_kind,
        ceo_tenure=ceo_tenure,
        ceo_l4l_due=ceo_l4l_due,
        ceo_change=ceo_change,
        culture=culture,
        system_years=np.array([(d - SYSTEM_DECLINE_FROM).days / 365.25 for d in dates]),
        **{field: _step_series(n, getattr(prog, field), changes) * programme_active
           for field, changes in plan.items()},
    )


def culture_index(years_of_values_work, levers: float, params: dict[str, float]):
    """Culture index in [0, 1] (ODD 7.1): values work, saturating after ``values_work_saturation_years``
    (the evaluation's "at least two years", evidence 1.1), and the three ongoing levers (values-based
    recruitment, reflective routines, distributed leadership), weighted by ``culture_values_share``."""
    values = np.minimum(np.asarray(years_of_values_work, dtype=float) / params["values_work_saturation_years"], 1.0)
    share = params["culture_values_share"]
    return share * values + (1 - share) * levers


def ceo_commitment(ctx: Context, params: dict[str, float]) -> np.ndarray:
    """Weekly commitment to the programme (0-1) of whoever is CEO, before any L4L of theirs (ODD 7.2)."""
    c0 = params["new_ceo_commitment"]
    permanent = 1.0 - (1.0 - c0) * np.exp(-np.maximum(ctx.ceo_tenure, 0) / params["ceo_commitment_time"])
    return np.where(ctx.ceo_kind == 0, permanent, params["interim_ceo_commitment"])
