"""Emulation of the evaluation's December 2018 social-network survey of L4L participants.

Sampling: ``respondents`` people drawn at random from staff in or having completed L4L (Table 5.3
response count). Each names the colleagues they talk to about improvement: among their out-ties,
those who are trained, practising or have capability >= 0.2 ("improvement contacts"), chosen with
probability proportional to tie weight x capability. The number named is drawn as 2-5 (90%) or
6-10 (10%), and limited by how many improvement contacts they have. Named people become actors.

Measures, on the directed named-contact network (as a UCINET user would compute them):
- actors: respondents plus everyone named; ties: directed named pairs.
- reciprocity: dyad-based, mutual dyads / dyads with at least one tie (UCINET "dyad method");
  reciprocity_arcs: arcs in mutual dyads / all arcs ("arc method").
- brokerage, counted only through respondents b (non-respondents' out-ties are unknown): every
  ordered pair (a, c) with a -> b and b -> c, a != c, and no tie between a and c in either direction.
  Each such 2-path is classified by reciprocation of its two ties:
  simple (a -> b and b -> c both one-way), recip_in (a <-> b, b -> c one-way),
  recip_out (a -> b one-way, b <-> c), both (a <-> b and b <-> c). With both reciprocated the
  pair is counted in each direction, (a, c) and (c, a), as UCINET counts ordered pairs.
- isolated_share: share of respondents outside the largest weakly connected component ("cut off
  from the core"); components: number of weakly connected components.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from sim.staff import COMPLETE, IN_PROGRESS

CONTACT_CAPABILITY = 0.2
NAMES_USUAL, NAMES_MAX = (2, 5), 10
SHARE_NAMING_MORE = 0.1


def _names(model, respondent: int, rng: np.random.Generator) -> np.ndarray:
    s = model.staff
    targets, weight = model.network.out_ties(respondent)
    relevant = s.trained()[targets] | s.practising[targets] | (s.capability[targets] >= CONTACT_CAPABILITY)
    targets, weight = targets[relevant], weight[relevant]
    if len(targets) == 0:
        return targets
    wanted = (rng.integers(NAMES_USUAL[1] + 1, NAMES_MAX + 1) if rng.random() < SHARE_NAMING_MORE
              else rng.integers(NAMES_USUAL[0], NAMES_USUAL[1] + 1))
    score = weight * (s.capability[targets] + 0.05)
    return rng.choice(targets, size=min(wanted, len(targets)), replace=False, p=score / score.sum())


def emulate_survey(model, respondents: int) -> dict:
    """Run the survey on the model's current state; returns edges (slot ids) and measures."""
    rng = model.observation_rng
    participants = np.flatnonzero((model.staff.l4l == IN_PROGRESS) | (model.staff.l4l == COMPLETE))
    sample = rng.choice(participants, size=min(respondents, len(participants)), replace=False)
    edges = [(int(r), int(t)) for r in sample for t in _names(model, r, rng)]
    edge_frame = pd.DataFrame(edges, columns=["source", "target"], dtype="int64")
    return {"edges": edge_frame, "measures": network_measures(edge_frame, sample)}


def network_measures(edges: pd.DataFrame, respondents) -> dict:
    """Actors, ties, reciprocity and brokerage of a directed survey network (see module doc)."""
    actors = np.union1d(np.asarray(respondents, dtype=np.int64),
                        np.union1d(edges["source"].to_numpy(), edges["target"].to_numpy()))
    index = {a: i for i, a in enumerate(actors)}
    n = len(actors)
    adj = np.zeros((n, n), dtype=bool)
    if len(edges):
        adj[edges["source"].map(index).to_numpy(), edges["target"].map(index).to_numpy()] = True
    mutual = adj & adj.T
    connected_dyads = int(np.triu(adj | adj.T, 1).sum())
    mutual_dyads = int(np.triu(mutual, 1).sum())
    ties = int(adj.sum())
    counts = dict(simple=0, recip_in=0, recip_out=0, both=0)
    adjacent = adj | adj.T
    for b in (index[r] for r in np.asarray(respondents, dtype=np.int64)):
        a_side, c_side = np.flatnonzero(adj[:, b]), np.flatnonzero(adj[b, :])
        if len(a_side) == 0 or len(c_side) == 0:
            continue
        open_pair = ~adjacent[np.ix_(a_side, c_side)] & (a_side[:, None] != c_side[None, :])
        rec_in, rec_out = adj[b, a_side][:, None], adj[c_side, b][None, :]
        counts["simple"] += int((open_pair & ~rec_in & ~rec_out).sum())
        counts["recip_in"] += int((open_pair & rec_in & ~rec_out).sum())
        counts["recip_out"] += int((open_pair & ~rec_in & rec_out).sum())
        counts["both"] += int((open_pair & rec_in & rec_out).sum())
    total = sum(counts.values())
    n_components, labels = connected_components(
        coo_matrix((np.ones(ties), np.nonzero(adj)), shape=(n, n)), directed=True, connection="weak") \
        if n else (0, np.array([], dtype=int))
    resp_idx = np.array([index[r] for r in np.asarray(respondents, dtype=np.int64)], dtype=int)
    largest = np.bincount(labels).argmax() if n else 0
    isolated = float(np.mean(labels[resp_idx] != largest)) if len(resp_idx) else 0.0
    return {
        "respondents": int(len(resp_idx)),
        "actors": int(n),
        "ties": ties,
        "reciprocity": mutual_dyads / connected_dyads if connected_dyads else 0.0,
        "reciprocity_arcs": 2 * mutual_dyads / ties if ties else 0.0,
        **{f"brokerage_{k}": v for k, v in counts.items()},
        "brokerage_simple_share": counts["simple"] / total if total else 0.0,
        "components": int(n_components),
        "isolated_share": isolated,
        "density": ties / (n * (n - 1)) if n > 1 else 0.0,
    }
