"""The improvement network: directed, weighted ties between staff, with reciprocity.

Ties are kept as arrays sorted by key = source * n + target, so adding, removing and checking
reciprocity are vectorised searches rather than Python loops or sparse-matrix rebuilds.
A tie i -> j means i talks to j (the survey's "people you talk to"); knowledge and influence flow
along it, at full strength when j also talks to i (reciprocated), at ``one_way_efficiency``
otherwise (evidence 1.4).
"""

from __future__ import annotations

import numpy as np


class ImprovementNetwork:
    def __init__(self, n: int):
        self.n = n
        self.keys = np.empty(0, dtype=np.int64)
        self.source = np.empty(0, dtype=np.int64)
        self.target = np.empty(0, dtype=np.int64)
        self.weight = np.empty(0)
        self.lasting = np.empty(0, dtype=bool)     # work ties of one's post; others decay
        self.reciprocated = np.empty(0, dtype=bool)
        self._cache: dict = {}

    _FIELDS = ("keys", "source", "target", "weight", "lasting", "reciprocated")

    def _cached(self, name, compute):
        if name not in self._cache:
            self._cache[name] = compute()
        return self._cache[name]

    def _has(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(self.keys, keys)
        found = np.zeros(len(keys), dtype=bool)
        inside = pos < len(self.keys)
        found[inside] = self.keys[pos[inside]] == keys[inside]
        return found, pos

    def _reverse(self, keys: np.ndarray) -> np.ndarray:
        return (keys % self.n) * self.n + keys // self.n

    def add(self, source, target, weight: float = 1.0, lasting: bool = False) -> None:
        """Add ties; a tie that exists already is strengthened to at least ``weight``."""
        source, target = np.asarray(source, dtype=np.int64), np.asarray(target, dtype=np.int64)
        keep = source != target
        keys = np.unique(source[keep] * self.n + target[keep])
        if len(keys) == 0:
            return
        found, pos = self._has(keys)
        self.weight[pos[found]] = np.maximum(self.weight[pos[found]], weight)
        self.lasting[pos[found]] |= lasting
        new = keys[~found]
        if len(new) == 0:
            return
        at = pos[~found]
        values = dict(keys=new, source=new // self.n, target=new % self.n, weight=weight,
                      lasting=lasting, reciprocated=False)
        for name in self._FIELDS:
            setattr(self, name, np.insert(getattr(self, name), at, values[name]))
        self._refresh_reciprocity(self._reverse(new), True)
        self._refresh_reciprocity(new, self._has(self._reverse(new))[0])
        self._cache.clear()

    def _refresh_reciprocity(self, keys: np.ndarray, value) -> None:
        found, pos = self._has(keys)
        value = np.broadcast_to(value, keys.shape)
        self.reciprocated[pos[found]] = value[found]

    def _keep(self, keep: np.ndarray) -> None:
        dropped = self.keys[~keep]
        if len(dropped) == 0:
            return
        for name in self._FIELDS:
            setattr(self, name, getattr(self, name)[keep])
        self._refresh_reciprocity(self._reverse(dropped), False)
        self._cache.clear()

    def remove_nodes(self, nodes: np.ndarray) -> None:
        """Remove every tie to or from ``nodes`` (leavers take their ties with them)."""
        gone = np.zeros(self.n, dtype=bool)
        gone[nodes] = True
        self._keep(~(gone[self.source] | gone[self.target]))

    def decay(self, factor: float, threshold: float = 0.1) -> None:
        """Weaken non-lasting ties by ``factor`` and drop those under ``threshold``."""
        self.weight[~self.lasting] *= factor
        self._cache.pop("effective", None)
        self._keep(self.lasting | (self.weight >= threshold))

    def form_ties(self, members: np.ndarray, ties_each: int, reciprocation: float,
                  rng: np.random.Generator, weight: float = 1.0, lasting: bool = False) -> None:
        """Each member forms ``ties_each`` ties to random other members; each is returned
        (reciprocated) with probability ``reciprocation``."""
        members = np.asarray(members)
        if len(members) < 2 or ties_each <= 0:
            return
        source = np.repeat(members, ties_each)
        target = members[rng.integers(0, len(members), size=len(source))]
        back = rng.random(len(source)) < reciprocation
        self.add(np.concatenate([source, target[back]]), np.concatenate([target, source[back]]),
                 weight=weight, lasting=lasting)

    # -- flows -------------------------------------------------------------------------------
    def effective_weight(self, one_way_efficiency: float) -> np.ndarray:
        return self._cached("effective", lambda: self.weight * np.where(self.reciprocated, 1.0, one_way_efficiency))

    def inflow(self, values: np.ndarray, one_way_efficiency: float) -> np.ndarray:
        """Sum over incoming ties of effective weight x the source's value."""
        w = self.effective_weight(one_way_efficiency)
        return np.bincount(self.target, weights=w * values[self.source], minlength=self.n)

    def in_strength(self, one_way_efficiency: float) -> np.ndarray:
        return self._cached("in_strength", lambda: np.bincount(
            self.target, weights=self.effective_weight(one_way_efficiency), minlength=self.n))

    def knowledge_gain(self, capability: np.ndarray, one_way_efficiency: float) -> np.ndarray:
        """Per receiver, the weighted capability gap to more capable sources (knowledge flows downhill)."""
        gap = np.maximum(capability[self.source] - capability[self.target], 0.0)
        return np.bincount(self.target, weights=self.effective_weight(one_way_efficiency) * gap,
                           minlength=self.n)

    # -- measures ----------------------------------------------------------------------------
    def reciprocity(self) -> float:
        """Share of ties that are reciprocated (arc-based reciprocity)."""
        return float(self.reciprocated.mean()) if len(self.keys) else 0.0

    def out_ties(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.searchsorted(self.keys, [node * self.n, (node + 1) * self.n])
        return self.keys[lo:hi] % self.n, self.weight[lo:hi]
