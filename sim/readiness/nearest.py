"""The nearest of the five trusts at their start, by a stated distance over the scenario inputs.

Each organisation is described at its programme start by ``FEATURES``, read from its scenario by the same
code for the five trusts (their files in scenarios/) and for the organisation (its mapped scenario), each
divided by a stated range so that one unit means "as different as it gets among plausible trusts":

| feature | read as | range |
| --- | --- | --- |
| culture index | the model's culture index at the start (ODD 5) | 1 |
| CEO years in post | the chief executive's years in post at the start, at most 5 | 5 |
| CEO changes | changes of chief executive in the five years after the start, at most 3 | 3 |
| regulatory pressure | the mean regulatory pressure over the three years after the start | 1 |
| special measures | the share of those three years in special measures (turnaround support) | 1 |
| KPO per 1,000 staff | improvement team members per 1,000 staff at the start, at most 4 | 4 |
| RPIWs per 1,000 staff | planned RPIWs a year per 1,000 staff at the start, at most 6 | 6 |
| L4L per 1,000 staff | planned L4L leaders a year (cohorts x 25) per 1,000 staff, at most 20 | 20 |
| size | log10 of staff, within 2.5-5 | 1.5 |

The distance is the Euclidean distance over the scaled features (equal weights). The five trusts' L4L paces
are their files' (2 cohorts a year), not the calibrated ones: a calibration's per-trust values are fits, not
plans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.context import build_context, week_of
from sim.readiness.dimensions import L4L_COHORT_SIZE
from sim.runner import TRUSTS
from sim.scenario import Scenario, load_scenario



@dataclass(frozen=True)
class Feature:
    name: str
    label: str
    scale: float


FEATURES = (
    Feature("culture_index", "culture index at the start", 1.0),
    Feature("ceo_years", "CEO years in post", 5.0),
    Feature("ceo_changes", "CEO changes in 5 years", 3.0),
    Feature("pressure", "regulatory pressure, 3 years", 1.0),
    Feature("special_measures", "special measures, share of 3 years", 1.0),
    Feature("kpo_per_1000", "KPO per 1,000 staff", 4.0),
    Feature("rpiws_per_1000", "RPIWs a year per 1,000 staff", 6.0),
    Feature("l4l_per_1000", "L4L leaders a year per 1,000 staff", 20.0),
    Feature("log_staff", "log10 staff", 1.5),
)


def features(scenario: Scenario, params: dict) -> dict[str, float]:
    ctx = build_context(scenario, params)
    start = max(week_of(scenario, scenario.programme.start), 0)
    three, five = slice(start, start + 3 * 52), slice(start + 1, start + 5 * 52)
    programme = scenario.programme
    return {
        "culture_index": float(ctx.culture[start]),
        "ceo_years": min(float(ctx.ceo_tenure[start]) / 52.0, 5.0),
        "ceo_changes": min(float(ctx.ceo_change[five].sum()), 3.0),
        "pressure": float(ctx.pressure[three].mean()),
        "special_measures": float(ctx.turnaround_support[three].mean()),
        "kpo_per_1000": min(programme.kpo_staff / scenario.staff * 1000, 4.0),
        "rpiws_per_1000": min(programme.rpiws_per_year / scenario.staff * 1000, 6.0),
        "l4l_per_1000": min(programme.l4l_cohorts_per_year * L4L_COHORT_SIZE / scenario.staff * 1000, 20.0),
        "log_staff": float(np.clip(math.log10(scenario.staff), 2.5, 5.0)),
    }


def distances(scenario: Scenario, params: dict) -> pd.DataFrame:
    """One row per organisation (this one first, then the five trusts, nearest first): the features, each
    feature's scaled difference from this organisation, and the distance."""
    own = features(scenario, params)
    rows = [{"organisation": scenario.name, **own, "distance": 0.0}]
    for trust in TRUSTS:
        theirs = features(load_scenario(trust), params)
        distance = math.sqrt(sum(((theirs[f.name] - own[f.name]) / f.scale) ** 2 for f in FEATURES))
        rows.append({"organisation": trust, **theirs, "distance": distance})
    table = pd.DataFrame(rows)
    return pd.concat([table.iloc[:1], table.iloc[1:].sort_values("distance")], ignore_index=True)


def largest_differences(table: pd.DataFrame, trust: str, count: int = 3) -> list[str]:
    """The features in which ``trust`` differs most from the organisation (first row), in words."""
    own, theirs = table.iloc[0], table.set_index("organisation").loc[trust]
    gaps = sorted(FEATURES, key=lambda f: -abs(theirs[f.name] - own[f.name]) / f.scale)
    return [f"{f.label}: {own[f.name]:.2g} here, {theirs[f.name]:.2g} at {trust}" for f in gaps[:count]
            if abs(theirs[f.name] - own[f.name]) > 1e-9]
