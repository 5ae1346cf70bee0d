"""Staff as Mesa agents.

The weekly update is vectorised over the model's arrays (sim/staff.py); each StaffAgent is the
inspectable view of one post ("slot") and reads its state from those arrays. Agents are made when
first asked for (``model.agents``, ``model.agent_at``, ``model.staff_agents[slot]``), so a run nobody
inspects pays nothing for them. A leaver's agent is removed from the model and the slot's next agent
is a new one (a new unique_id).
"""

from __future__ import annotations

import mesa

from collections.abc import Sequence

from sim.staff import ALT_STATUS, L4L_STATUS, ROLES


class StaffAgent(mesa.Agent):
    def __init__(self, model, slot: int):
        super().__init__(model)
        self.slot = int(slot)

    def _get(self, field):
        return getattr(self.model.staff, field)[self.slot]

    @property
    def role(self) -> str:
        return ROLES[self._get("role")]

    @property
    def team(self) -> int:
        return int(self._get("team"))

    @property
    def capability(self) -> float:
        return float(self._get("capability"))

    @property
    def engagement(self) -> float:
        return float(self._get("engagement"))

    @property
    def morale(self) -> float:
        return float(self._get("morale"))

    @property
    def practising(self) -> bool:
        return bool(self._get("practising"))

    @property
    def l4l(self) -> str:
        return L4L_STATUS[self._get("l4l")]

    @property
    def alt(self) -> str:
        return ALT_STATUS[self._get("alt")]

    @property
    def contacts(self) -> list["StaffAgent"]:
        """The colleagues this member of staff talks to (out-ties)."""
        targets, _ = self.model.network.out_ties(self.slot)
        return [self.model.staff_agents[t] for t in targets]

    def __repr__(self) -> str:
        return (f"StaffAgent(id={self.unique_id}, slot={self.slot}, role={self.role}, team={self.team}, "
                f"l4l={self.l4l}, capability={self.capability:.2f}, engagement={self.engagement:.2f})")


class StaffRoster(Sequence):
    """The StaffAgent of each post, made on first access (list-like: ``roster[slot]``, ``len``, iteration)."""

    def __init__(self, model, n: int):
        self._model = model
        self._agents: list[StaffAgent | None] = [None] * n

    def __len__(self) -> int:
        return len(self._agents)

    def __getitem__(self, slot):
        if isinstance(slot, slice):
            return [self[i] for i in range(*slot.indices(len(self)))]
        agent = self._agents[slot]
        if agent is None:
            agent = self._agents[slot] = StaffAgent(self._model, slot)
        return agent

    def vacate(self, slots) -> None:
        """The people in ``slots`` have left: their agents leave the model."""
        for slot in slots:
            if self._agents[slot] is not None:
                self._agents[slot].remove()
                self._agents[slot] = None

    def make_all(self) -> None:
        for slot in range(len(self)):
            self[slot]
