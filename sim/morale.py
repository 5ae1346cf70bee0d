"""Morale and turnover (ODD 7.7): morale follows engagement, pressure, COVID-19 and instability;
low morale raises leaving; leavers take their ties, recruits start untrained and peripheral."""

from __future__ import annotations

import numpy as np


def target(engagement: np.ndarray, pressure: float, covid: bool, instability: float, p: dict) -> np.ndarray:
    goal = (p["morale_baseline"] + p["morale_engagement_weight"] * (engagement - p["engagement_reference"])
            - p["pressure_morale_loss"] * pressure
            - p["covid_morale_loss"] * covid
            - p["instability_morale_loss"] * min(instability, 1.0))
    return np.clip(goal, 0.0, 1.0)


def leaving_probability(morale: np.ndarray, weeks: int, p: dict) -> np.ndarray:
    """Probability of leaving within ``weeks``: the annual rate at baseline morale, raised as morale falls."""
    relative = np.maximum(1 + p["turnover_morale_sensitivity"] * (p["morale_baseline"] - morale) / p["morale_baseline"], 0)
    return p["turnover_rate"] * weeks / 52.0 * relative
