"""The latent quality index and the CQC ratings read from it (ODD 7.8).

Quality is a level, not an integral of rates: each week it moves a fraction 1/``quality_time_constant``
of the way towards the level the trust's state sets,

    level = quality_reference
            + quality_engagement_weight   x (mean engagement - engagement_reference)
            + quality_practice_weight     x practice (share practising x their capability)
            + quality_process_weight      x aligned process gains per 1,000 staff
            + turnaround_quality_support  x external turnaround support (special measures)
            - quality_instability_loss    x leadership instability
            - quality_system_decline      x years since the NHS-wide decline began,

plus noise. A trust settles where its state puts it; nothing pulls it towards any rating. The weekly
change is the sum of one contribution per term (``TERMS``; "settling" is the pull of the reference
level against the current index), so a run records why each trust ends where it does.
"""

from __future__ import annotations

import numpy as np

from sim import leadership
from sim.scenario import RATINGS

TERMS = ("settling", "engagement", "practice", "process", "support", "instability", "system", "noise")


def rating_of(quality: float) -> str:
    """CQC rating read from the quality index: one band per rating, 0-1 inadequate ... 3-4 outstanding."""
    return RATINGS[int(np.clip(np.floor(quality), 0, 3))]


def ratings_of(quality: np.ndarray) -> list[str]:
    """``rating_of`` of every value."""
    return [RATINGS[band] for band in np.clip(np.floor(quality), 0, 3).astype(int).tolist()]


def level_terms(engagement_mean: float, practice: float, process: float, support: float, instability: float,
                system_years: float, p: dict) -> dict[str, float]:
    """Each state term's part of the level the index moves towards (bands), reference excluded."""
    return {
        "engagement": p["quality_engagement_weight"] * (engagement_mean - p["engagement_reference"]),
        "practice": p["quality_practice_weight"] * practice,
        "process": p["quality_process_weight"] * process,
        "support": p["turnaround_quality_support"] * support,
        "instability": -p["quality_instability_loss"] * min(instability, 1.0),
        "system": -p["quality_system_decline"] * max(system_years, 0.0),
    }


def instability_followed(arrival_instability: float, weeks_in_post: float, p: dict) -> float:
    """The instability term's part of the index at the start of a run (ODD 5), when the current CEO arrived
    ``weeks_in_post`` weeks before it with ``arrival_instability``: the weekly rule (``weekly_contributions``, no
    noise) run over those weeks from the level before the arrival, the instability decaying as in a run
    (``leadership.decayed_instability``). The index takes in a CEO change over ``quality_time_constant`` weeks, so it
    has followed little of an arrival on the first day and, years on, little remains to follow: the same as after a
    change during the run."""
    quality, instability = p["quality_reference"], arrival_instability
    for _ in range(max(int(round(weeks_in_post)), 0)):
        terms = {"instability": -p["quality_instability_loss"] * min(instability, 1.0)}
        quality += sum(weekly_contributions(quality, terms, 0.0, p).values())
        instability = leadership.decayed_instability(instability, p)
    return quality - p["quality_reference"]


def settled_level(terms: dict[str, float], p: dict) -> float:
    return p["quality_reference"] + sum(terms.values())


def weekly_contributions(quality: float, terms: dict[str, float], noise_draw: float, p: dict) -> dict[str, float]:
    """This week's change of the index, split by term (they sum to the change)."""
    rate = 1.0 / p["quality_time_constant"]
    contributions = {"settling": rate * (p["quality_reference"] - quality)}
    contributions.update({name: rate * value for name, value in terms.items()})
    contributions["noise"] = p["quality_noise"] * np.sqrt(1 / 52) * noise_draw
    return contributions
