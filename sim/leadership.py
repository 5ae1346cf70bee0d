"""Leadership (ODD 7.2): the CEO's commitment, instability after a CEO change, and what buffers it.

Evidence 1.2: when a sponsoring CEO leaves, engagement leaves with them unless leadership is
distributed; once a critical mass of staff practise the method, leadership changes disrupt much less.
"""

from __future__ import annotations

import numpy as np


def change_buffer(distributed_leadership: float, practising_share: float, p: dict) -> float:
    """How far a CEO change is absorbed (0 none, 1 fully): distributed leadership or a critical mass."""
    return max(distributed_leadership, min(1.0, practising_share / p["critical_mass_share"]))


def inherited_instability(weeks_in_post: float, buffer: float, p: dict) -> float:
    """Instability at the start of a run: what the current CEO's arrival left, decayed since
    (the same jump as a change during the run; none for a long-serving CEO)."""
    return float((1 - buffer) * np.exp(-max(weeks_in_post, 0.0) / p["instability_time"]))


def decayed_instability(instability: float, p: dict) -> float:
    return instability * float(np.exp(-1.0 / p["instability_time"]))


def engagement_after_change(engagement: np.ndarray, buffer: float, p: dict) -> np.ndarray:
    """Engagement of every member of staff right after the CEO leaves."""
    return engagement * (1 - p["ceo_exit_engagement_loss"] * (1 - buffer))


def commitment(base: float, ceo_trained: bool, p: dict) -> float:
    """The CEO's commitment this week: by tenure and kind (sim/context.py), raised once the CEO
    takes part in L4L as a member of a cohort (evidence 2)."""
    return float(min(base + p["ceo_l4l_commitment_boost"] * ceo_trained, 1.0))
