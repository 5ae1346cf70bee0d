"""Knowledge sharing and adoption of the practice (ODD 7.3).

Capability flows along ties from more to less capable contacts, gated by the receiver's engagement;
practice spreads by complex contagion (adoption needs reinforcement from several practising
contacts; Centola and Macy 2007) and lapses without belief. Reciprocated ties carry fully, one-way
ties at ``one_way_efficiency`` (evidence 1.4: knowledge is mobilised through reciprocal exchange).
"""

from __future__ import annotations

import numpy as np


def capability_gain(knowledge_gap: np.ndarray, capability: np.ndarray, engagement: np.ndarray, p: dict) -> np.ndarray:
    """Capability learnt this week from ``knowledge_gap`` (ImprovementNetwork.knowledge_gain), gated by engagement."""
    gain = p["knowledge_sharing_rate"] * engagement * knowledge_gap
    return np.minimum(gain, 1 - capability)


def adoption_pull(exposure: np.ndarray, p: dict) -> np.ndarray:
    """Hill function of weighted practising contacts: half its maximum at ``adoption_threshold``."""
    k = p["adoption_steepness"]
    return exposure ** k / (exposure ** k + p["adoption_threshold"] ** k)


def adopt_and_abandon(practising: np.ndarray, engagement: np.ndarray, exposure: np.ndarray, draw: np.ndarray,
                      daily_management: float, p: dict) -> np.ndarray:
    """Who practises after this week: adopters join; those who lose belief drop out, and more often those whom no
    practising colleague talks to (``practice_isolation_abandon``: the same reinforcement that adoption needs keeps
    a practice going)."""
    pull = adoption_pull(exposure, p)
    adopt = ~practising & (draw < p["adoption_rate"] * engagement * pull)
    isolation = 1 + p["practice_isolation_abandon"] * (1 - pull)
    abandon = practising & (draw < p["abandon_rate"] * (1 - engagement) * (1 - daily_management) * isolation)
    return (practising | adopt) & ~abandon
