"""Engagement: belief in the method (ODD 7.4).

Each member of staff relaxes towards a target set by the CEO's sponsorship, the culture, their own
training, regulatory pressure and the trained/untrained divide, and towards their contacts'
engagement (social influence, reciprocated ties weighing more; evidence 1.4).
"""

from __future__ import annotations

import numpy as np

from sim import kernels
from sim.network import ImprovementNetwork


def divide(network: ImprovementNetwork, trained: np.ndarray) -> np.ndarray:
    """Per member of staff, the share of their incoming tie weight that is one-way from trained staff
    (the method handed down by messengers, not exchanged), for the untrained; 0 for the trained.
    Where trained staff talk *with* untrained colleagues the ties are reciprocated and no divide forms."""
    handed_down, total = kernels.divide_shares(network.source, network.target, network.weight, network.reciprocated,
                                               trained, network.n)
    return np.where(trained, 0.0, handed_down / np.maximum(total, 1e-12))


def target(p: dict, commitment: float, programme_active: bool, culture: float, trained: np.ndarray,
           pressure: float, divide_share: np.ndarray) -> np.ndarray:
    return (p["engagement_baseline"]
            + p["ceo_sponsorship_weight"] * commitment * programme_active
            + p["culture_engagement_weight"] * culture
            + p["training_engagement_boost"] * trained
            - p["pressure_engagement_loss"] * pressure
            - p["divide_penalty"] * divide_share)


def peer_mean(inflow: np.ndarray, strength: np.ndarray, engagement: np.ndarray) -> np.ndarray:
    """Weighted mean engagement of each member's in-contacts (their own engagement if they have none), from
    the network's ``inflow(engagement)`` and ``in_strength``."""
    return np.where(strength > 0, inflow / np.maximum(strength, 1e-12), engagement)


def updated(engagement: np.ndarray, goal: np.ndarray, peers: np.ndarray, p: dict) -> np.ndarray:
    moved = engagement + p["engagement_adjust_rate"] * (goal - engagement) + p["peer_influence_rate"] * (peers - engagement)
    return np.clip(moved, 0.0, 1.0)
