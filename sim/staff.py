"""Staff state as arrays, one entry per post ("slot"); a leaver's slot goes to their replacement."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROLES = ("doctor", "nurse_ahp", "manager", "support")
L4L_STATUS = ("none", "in_progress", "complete", "dropped")
ALT_STATUS = ("none", "in_progress", "complete")
NONE, IN_PROGRESS, COMPLETE, DROPPED = 0, 1, 2, 3


def average(values: np.ndarray) -> float:
    """values.mean(), bit for bit, without np.mean's Python-level overhead (read several times a week)."""
    return float(values.sum() / len(values))


@dataclass
class StaffState:
    role: np.ndarray          # index into ROLES
    team: np.ndarray          # team (ward/department) index
    capability: np.ndarray    # improvement capability, 0-1
    engagement: np.ndarray    # belief in the method, 0-1
    morale: np.ndarray        # 0-1
    practising: np.ndarray    # bool: uses the method in daily work
    l4l: np.ndarray           # index into L4L_STATUS
    alt: np.ndarray           # index into ALT_STATUS
    cohort: np.ndarray        # L4L cohort id, -1 if none
    kpo: np.ndarray           # bool: a post in the central improvement team (KPO)

    @property
    def n(self) -> int:
        return len(self.role)

    @classmethod
    def create(cls, n: int, team_size: int, role_shares: list[float], capability: float, engagement: np.ndarray,
               morale: np.ndarray, rng: np.random.Generator) -> "StaffState":
        n_teams = max(1, int(round(n / team_size)))
        return cls(
            role=rng.choice(len(ROLES), size=n, p=role_shares).astype(np.int8),
            team=np.sort(rng.integers(0, n_teams, size=n)).astype(np.int32),
            capability=np.full(n, capability),
            engagement=engagement,
            morale=morale,
            practising=np.zeros(n, dtype=bool),
            l4l=np.zeros(n, dtype=np.int8),
            alt=np.zeros(n, dtype=np.int8),
            cohort=np.full(n, -1, dtype=np.int32),
            kpo=np.zeros(n, dtype=bool),
        )

    def replace(self, slots: np.ndarray, capability: float, engagement: np.ndarray, morale: float) -> None:
        """Recruits take the leavers' posts (same role and team), untrained and new."""
        self.capability[slots] = capability
        self.engagement[slots] = engagement
        self.morale[slots] = morale
        self.practising[slots] = False
        self.l4l[slots] = NONE
        self.alt[slots] = NONE
        self.cohort[slots] = -1

    def trained(self) -> np.ndarray:
        """In or through L4L or ALT, or in the KPO: the staff who carry the method."""
        return (self.l4l == IN_PROGRESS) | (self.l4l == COMPLETE) | (self.alt != NONE) | self.kpo

    def appoint_kpo(self, slots: np.ndarray, capability: float) -> None:
        self.kpo[slots] = True
        self.capability[slots] = np.maximum(self.capability[slots], capability)
        self.practising[slots] = True
