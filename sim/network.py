"""The improvement network: directed, weighted ties between staff, with reciprocity (ODD 2, 7.4).

Ties are kept as arrays sorted by key = source * n + target, so adding, removing and checking
reciprocity are vectorised searches rather than Python loops or sparse-matrix rebuilds.
A tie i -> j means i talks to j about improvement (the survey's "people you talk to"); knowledge
and influence flow along it, at full strength when j also talks to i (reciprocated), at
``one_way_efficiency`` otherwise (evidence 1.4). Every tie remembers where it came from
(``origin``, one of TIE_ORIGINS) and the last week it carried an exchange (``last_active``): the
survey names contacts by strength and recency, and unused ties decay (sim/relationships.py).

This module only stores ties and computes flows; which ties form, exchange, return or fade is the
relationships mechanism's job.
"""

from __future__ import annotations

import numpy as np

from sim import kernels

TIE_ORIGINS = ("work", "cross_team", "cohort", "rpiw", "kpo", "messenger", "reflective", "returned", "alt_hub", "leadership")
ORIGIN = {name: code for code, name in enumerate(TIE_ORIGINS)}
NEW_TIE_WEIGHT = 1.0   # the unit of tie weight: a tie as it forms; use makes it stronger (sim/relationships.py)
_NO_DROP = np.empty(0, dtype=bool)        # kernels.edit_ties: keep every tie
_NO_KEYS = np.empty(0, dtype=np.int64)    # kernels.edit_ties: add none


class ImprovementNetwork:
    _FIELDS = ("keys", "source", "target", "weight", "lasting", "reciprocated", "last_active", "origin")

    def __init__(self, n: int):
        self.n = n
        self.keys = np.empty(0, dtype=np.int64)
        self.source = np.empty(0, dtype=np.int64)
        self.target = np.empty(0, dtype=np.int64)
        self.weight = np.empty(0)
        self.lasting = np.empty(0, dtype=bool)       # formal work ties of one's post; others decay
        self.reciprocated = np.empty(0, dtype=bool)  # the reverse tie exists
        self.last_active = np.empty(0, dtype=np.int32)
        self.origin = np.empty(0, dtype=np.int8)

    def __len__(self) -> int:
        return len(self.keys)

    def _has(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(self.keys, keys)
        found = np.zeros(len(keys), dtype=bool)
        inside = pos < len(self.keys)
        found[inside] = self.keys[pos[inside]] == keys[inside]
        return found, pos

    def reverse_keys(self, keys: np.ndarray) -> np.ndarray:
        return (keys % self.n) * self.n + keys // self.n

    def reverse_positions(self) -> np.ndarray:
        """For each tie, the position of its reverse tie (meaningful where ``reciprocated``; 0 elsewhere);
        compiled (kernels.reverse_positions), the same as ``reverse_positions_reference``."""
        return kernels.reverse_positions(self.source, self.target, self.reciprocated, self.n)

    def reverse_positions_reference(self) -> np.ndarray:
        pos = np.searchsorted(self.keys, self.reverse_keys(self.keys))
        return np.where(self.reciprocated, pos, 0)

    def add(self, source, target, week: int, origin: str, weight: float = NEW_TIE_WEIGHT, lasting: bool = False) -> None:
        """Add ties (one merge of all fields); an existing tie is strengthened to at least
        ``weight`` and marked active this week."""
        self.keep_and_add(None, source, target, week, origin, weight, lasting)

    def keep_and_add(self, keep: np.ndarray | None, source, target, week: int, origin: str,
                     weight: float = NEW_TIE_WEIGHT, lasting: bool = False) -> None:
        """``keep(keep)`` then ``add(source, target, ...)`` (``keep`` None: keep every tie), in one compiled pass
        (kernels.edit_ties): the same ties, fields and order as ``keep_and_add_reference``."""
        keys = self._new_keys(source, target)
        if keep is None and not len(keys):
            return
        changed, fields = kernels.edit_ties(self._fields(), _NO_DROP if keep is None else keep, keys, week,
                                            float(weight), bool(lasting), ORIGIN[origin], self.n)
        if changed:
            self._set_fields(fields)

    def keep(self, keep: np.ndarray) -> None:
        """Keep only the ties where ``keep`` is true; their reverses lose reciprocation."""
        changed, fields = kernels.edit_ties(self._fields(), keep, _NO_KEYS, 0, NEW_TIE_WEIGHT, False, 0, self.n)
        if changed:
            self._set_fields(fields)

    def _new_keys(self, source, target) -> np.ndarray:
        source, target = np.asarray(source, dtype=np.int64), np.asarray(target, dtype=np.int64)
        distinct = source != target
        return np.unique(source[distinct] * self.n + target[distinct])

    def _fields(self) -> tuple:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def _set_fields(self, arrays: tuple) -> None:
        for name, array in zip(self._FIELDS, arrays):
            setattr(self, name, array)

    # -- the numpy formulas that kernels.edit_ties replaces (tests/test_kernels.py checks it against them) ----------
    def keep_and_add_reference(self, keep: np.ndarray | None, source, target, week: int, origin: str,
                               weight: float = NEW_TIE_WEIGHT, lasting: bool = False) -> None:
        keys = self._new_keys(source, target)
        found, pos = self._has(keys)
        if keep is not None:
            found[found] = keep[pos[found]]            # a tie dropped now is added anew
        old = pos[found]
        self.weight[old] = np.maximum(self.weight[old], weight)
        self.lasting[old] |= lasting
        self.last_active[old] = week
        new = keys[~found]
        if keep is not None:
            dropped = self.keys[~keep]
            self._set_fields(tuple(field[keep] for field in self._fields()))
            self._set_reciprocated(self.reverse_keys(dropped), False)
        if len(new):
            k = len(new)     # the new rows, field by field in _FIELDS order
            rows = (new, new // self.n, new % self.n, np.full(k, float(weight)), np.full(k, bool(lasting)),
                    np.zeros(k, dtype=bool), np.full(k, week, dtype=np.int32), np.full(k, ORIGIN[origin], dtype=np.int8))
            at = np.searchsorted(self.keys, new)
            self._set_fields(tuple(np.insert(field, at, row) for field, row in zip(self._fields(), rows)))
            self._set_reciprocated(self.reverse_keys(new), True)
            self._set_reciprocated(new, self._has(self.reverse_keys(new))[0])

    def _set_reciprocated(self, keys: np.ndarray, value) -> None:
        found, pos = self._has(keys)
        value = np.broadcast_to(value, keys.shape)
        self.reciprocated[pos[found]] = value[found]

    def remove_personal_ties(self, nodes: np.ndarray) -> None:
        """Remove the ties ``nodes`` made themselves (every tie to or from them that is not a formal
        work tie of the post): leavers take their relationships with them, the post keeps its work ties."""
        gone = np.zeros(self.n, dtype=bool)
        gone[nodes] = True
        self.keep(self.lasting | ~(gone[self.source] | gone[self.target]))

    # -- flows -------------------------------------------------------------------------------
    # The model reads the week's flows from ``weekly_flows`` (one compiled pass); the numpy formulas
    # below define them and are what tests/test_kernels.py checks the kernel against.
    def effective_weight(self, one_way_efficiency: float) -> np.ndarray:
        return self.weight * np.where(self.reciprocated, 1.0, one_way_efficiency)

    def inflow(self, values: np.ndarray, one_way_efficiency: float) -> np.ndarray:
        """Sum over incoming ties of effective weight x the source's value."""
        w = self.effective_weight(one_way_efficiency)
        return np.bincount(self.target, weights=w * values[self.source], minlength=self.n)

    def in_strength(self, one_way_efficiency: float) -> np.ndarray:
        return np.bincount(self.target, weights=self.effective_weight(one_way_efficiency), minlength=self.n)

    def weekly_flows(self, capability: np.ndarray, practising: np.ndarray, engagement: np.ndarray,
                     one_way_efficiency: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The week's four flows in one pass (compiled): ``knowledge_gain(capability)``,
        ``inflow(practising)``, ``inflow(engagement)`` and ``in_strength``, bit for bit."""
        return kernels.weekly_flows(self.source, self.target, self.weight, self.reciprocated, one_way_efficiency,
                                    capability, practising, engagement, self.n)

    def knowledge_gain(self, capability: np.ndarray, one_way_efficiency: float) -> np.ndarray:
        """Per receiver, the weighted capability gap to more capable sources (knowledge flows downhill)."""
        gap = np.maximum(capability[self.source] - capability[self.target], 0.0)
        return np.bincount(self.target, weights=self.effective_weight(one_way_efficiency) * gap,
                           minlength=self.n)

    # -- measures ----------------------------------------------------------------------------
    def arc_reciprocity(self) -> float:
        """Share of ties whose reverse tie exists (arc-based reciprocity of the whole network)."""
        return float(self.reciprocated.mean()) if len(self.keys) else 0.0

    def out_slice(self, node: int) -> slice:
        """Positions of ``node``'s out-ties in the tie arrays (keys, target, weight, last_active, ...)."""
        lo, hi = np.searchsorted(self.keys, [node * self.n, (node + 1) * self.n])
        return slice(int(lo), int(hi))

    def out_ties(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        at = self.out_slice(node)
        return self.target[at], self.weight[at]
