"""Emulation of the evaluation's December 2018 network survey of L4L participants (ODD 7.10, Table 5.3).

**Sampling.** In the survey week the invitation list is every member of staff whose L4L status is
in progress or complete (dropped-out and untrained staff are not on it). ``respondents`` of them
(the published response count) are drawn uniformly without replacement; a list shorter than that
is surveyed in full. ``invited`` (the list's size, at the model's scale) is returned with the
measures; the calibration reads the same count, in full-size units, as ``l4l_participants_2018_12`` in
summary.json, against the published invitations.

**Naming.** Each respondent is asked for the 2 to 5 (at most 10) people they talk to about
improvement. How many they name: with probability p[survey_share_naming_more] uniform on 6..10,
otherwise uniform on 2..5; never more than their out-ties. Whom: their out-ties in the improvement
network (a tie i -> j means i talks to j about improvement), drawn without replacement with
probability proportional to ``salience ** S``, salience = ``weight x exp(-(week - last_active) / R)``,
R = p[survey_recency_weeks], S = p[survey_recall_sharpness]: strong ties and ties used lately come
to mind first, and the more so the larger S (1: proportional to salience; large: the most salient
almost surely); the contact's capability plays no part. (The draw is a Gumbel top-k on S x
log-salience, which is successive sampling proportional to salience ** S and cannot underflow for
long-idle ties.) Respondents may name each other; nobody names themselves (the network has no
self-ties). Everyone named joins as an actor.

**Network.** Directed: one tie i -> j for each respondent i who named j. Only respondents have
out-ties (only they answered). On it, with N actors, T ties, M mutual dyads (i named j and j
named i), A asymmetric dyads (one named the other only), so T = 2M + A:

- ``respondents``: number who answered; ``actors``: respondents plus everyone named (N); ``ties``: T.
- ``dyad_reciprocity`` = M / (M + A): mutual dyads among dyads with any tie (UCINET's dyad method).
- ``arc_reciprocity`` = 2M / T: ties whose reverse tie exists among all ties (UCINET's arc method;
  ``networkx.overall_reciprocity``). Both are 0 when there are no ties.
- ``components``: weakly connected components among the actors (a respondent who names nobody
  and is named by nobody is one of them).
- ``isolated_share``: share of respondents outside the largest component ("disconnected from the
  core"); the largest is the one with most actors, on equal size the one with most respondents,
  then the first found. 0 with no respondents.
- brokerage: a configuration is a broker b with an unordered pair {a, c} of other actors such that
  a -> b -> c or c -> b -> a and no tie between a and c in either direction (Gould and Fernandez
  1989, without groups). Classify each of b's neighbours x by the dyad {x, b}: *in* (x -> b only),
  *out* (b -> x only) or *mutual*. A pair has a 2-path through b exactly when one of a, c is in or
  mutual and the other out or mutual; each configuration is counted once, in exactly one class:
  ``brokerage_simple`` (a in, c out: a -> b -> c, both ties one-way),
  ``brokerage_recip_in`` (a mutual, c out: the incoming tie reciprocated),
  ``brokerage_recip_out`` (a in, c mutual: the outgoing tie reciprocated),
  ``brokerage_both`` (a and c mutual: both ties reciprocated; the pair is counted once, not once per
  direction, so this count need not be even).
  Each configuration is one triad of the triad census with exactly two tied dyads whose middle
  actor sends a tie: 021C, 111U, 111D and 201 respectively (021D and 021U carry no 2-path), so the
  four counts equal ``networkx.triadic_census`` counts of those types (tests/test_survey.py). Only
  respondents have out-ties, so only respondents broker.
- ``brokerage_simple_share``: simple / all four (0 when there is no brokerage).
- ``density``: T / (N (N - 1)).
- who was named (why a survey is connected or not): ``named_respondent_share``, ties whose target
  also answered; ``named_participant_share``, ties whose target is an L4L participant (in progress
  or complete, respondents included); ``named_kpo_share``, ties whose target works in the KPO. Each
  0 without ties. Respondents reach each other, and the network holds together, only through the
  people they name in common; the last two need the model's staff and are added by ``emulate_survey``.

**Scale.** The measures are comparable to the evaluation only at full scale, and a run below scale 1
reports them with ``comparable: False``. The alternative, a full-size survey of a reduced-scale
network, does not exist: a model at scale s has s times the participants (BHRUT at s = 0.1: about
ten), so the published 49-94 respondents cannot be drawn, and counts (actors, ties, components,
brokerage) and component shares depend on the network's size. Below scale 1 the survey still runs,
with ``round(respondents x s)`` respondents (at least 1), so that the share of the list that answers
is about the evaluation's; its measures are for looking at, and calibration ignores them
(sim/calibration/targets.py).

**Files.** ``write_survey`` writes ``survey_network_<TRUST>.csv`` (one row per tie: source, target,
reciprocated, and the network tie's weight, weeks since last exchange and origin) and
``survey_actors_<TRUST>.csv`` (one row per actor: id, role, l4l status, respondent, kpo, ceo, team,
cohort); ``read_survey`` reads them back (sim/survey_figure.py draws them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from sim.network import TIE_ORIGINS
from sim.staff import COMPLETE, IN_PROGRESS, L4L_STATUS, ROLES

NAMES_USUAL, NAMES_MORE = (2, 5), (6, 10)   # "name 2-5 people (max 10)"
BROKERAGE = ("simple", "recip_in", "recip_out", "both")
GRAPH_MEASURES = ("respondents", "actors", "ties", "dyad_reciprocity", "arc_reciprocity", "components",
                  "isolated_share", *(f"brokerage_{k}" for k in BROKERAGE), "brokerage_simple_share", "density",
                  "named_respondent_share")
MEASURES = (*GRAPH_MEASURES, "named_participant_share", "named_kpo_share")
EDGE_COLUMNS = ("source", "target", "reciprocated", "weight", "weeks_since_active", "origin")
ACTOR_COLUMNS = ("id", "role", "l4l", "respondent", "kpo", "ceo", "team", "cohort")


def number_named(rng: np.random.Generator, share_naming_more: float) -> int:
    """How many people one respondent would name if they had the contacts (see module doc)."""
    low, high = NAMES_MORE if rng.random() < share_naming_more else NAMES_USUAL
    return int(rng.integers(low, high + 1))


def name_contacts(network, respondent: int, week: int, rng: np.random.Generator, recency_weeks: float,
                  share_naming_more: float, recall_sharpness: float) -> np.ndarray:
    """Positions (in the network's tie arrays) of the out-ties whose targets ``respondent`` names."""
    wanted = number_named(rng, share_naming_more)
    at = network.out_slice(respondent)
    with np.errstate(divide="ignore"):   # a zero-weight tie gets log-salience -inf: named last
        salience = np.log(network.weight[at]) - (week - network.last_active[at]) / recency_weeks
    # the chance of coming to mind next is proportional to salience ** sharpness (Gumbel top-k on
    # sharpness x log-salience); at sharpness 1 exactly the proportional draw
    order = np.argsort(-(recall_sharpness * salience + rng.gumbel(size=len(salience))), kind="stable")
    return at.start + order[:wanted]


def emulate_survey(model, respondents: int) -> dict:
    """Run the survey on the model's current state (see module doc).

    Returns ``edges`` and ``actors`` (DataFrames, columns EDGE_COLUMNS and ACTOR_COLUMNS, ids are
    staff slots), ``measures`` (network_measures plus ``comparable``) and ``invited`` (the size of
    the model's invitation list, at the model's scale)."""
    staff, network, rng = model.staff, model.network, model.observation_rng
    recency = float(model.params["survey_recency_weeks"])
    share_more = float(model.params["survey_share_naming_more"])
    sharpness = float(model.params["survey_recall_sharpness"])
    invited = np.flatnonzero((staff.l4l == IN_PROGRESS) | (staff.l4l == COMPLETE))
    comparable = model.scale >= 1
    wanted = respondents if comparable else max(1, round(respondents * model.scale))
    sample = np.sort(rng.choice(invited, size=min(wanted, len(invited)), replace=False))
    named = [name_contacts(network, r, model.week, rng, recency, share_more, sharpness) for r in sample]
    at = np.concatenate(named) if named else np.empty(0, dtype=np.int64)
    edges = pd.DataFrame({"source": network.source[at], "target": network.target[at]}, dtype="int64")
    named = edges["target"].to_numpy()
    participant = (staff.l4l == IN_PROGRESS) | (staff.l4l == COMPLETE)
    composition = {"named_participant_share": float(participant[named].mean()) if len(named) else 0.0,
                   "named_kpo_share": float(staff.kpo[named].mean()) if len(named) else 0.0}
    keys = set(zip(edges["source"], edges["target"]))
    edges["reciprocated"] = [(t, s) in keys for s, t in zip(edges["source"], edges["target"])]
    edges["weight"] = network.weight[at]
    edges["weeks_since_active"] = model.week - network.last_active[at].astype(np.int64)
    edges["origin"] = np.asarray(TIE_ORIGINS)[network.origin[at]]
    return {"edges": edges, "actors": _actors(model, sample, edges),
            "measures": {**network_measures(edges, sample), **composition, "comparable": bool(comparable)},
            "invited": int(len(invited))}


def _actors(model, sample: np.ndarray, edges: pd.DataFrame) -> pd.DataFrame:
    staff = model.staff
    ids = np.union1d(sample, edges["target"].to_numpy()).astype(np.int64)
    return pd.DataFrame({
        "id": ids,
        "role": np.asarray(ROLES)[staff.role[ids]],
        "l4l": np.asarray(L4L_STATUS)[staff.l4l[ids]],
        "respondent": np.isin(ids, sample),
        "kpo": staff.kpo[ids],
        "ceo": ids == model.ceo_slot,
        "team": staff.team[ids],
        "cohort": staff.cohort[ids],
    })


def network_measures(edges: pd.DataFrame, respondents) -> dict:
    """The measures of a directed survey network (module doc): ``edges`` has columns source and
    target (one row per tie, every source a respondent), ``respondents`` the ids of those who answered."""
    respondents = np.unique(np.asarray(respondents, dtype=np.int64))
    source, target = edges["source"].to_numpy(dtype=np.int64), edges["target"].to_numpy(dtype=np.int64)
    if np.any(source == target):
        raise ValueError("survey edges: a respondent names themselves")
    if not np.isin(source, respondents).all():
        raise ValueError("survey edges: a tie's source is not a respondent (only respondents name people)")
    actors = np.union1d(respondents, target)
    n = len(actors)
    adj = np.zeros((n, n), dtype=bool)
    adj[np.searchsorted(actors, source), np.searchsorted(actors, target)] = True
    ties = int(adj.sum())
    mutual_dyads = int((adj & adj.T).sum()) // 2
    dyads = ties - mutual_dyads
    counts = brokerage_counts(adj)
    total = sum(counts.values())
    isolated = _share_outside_largest(adj, np.searchsorted(actors, respondents))
    return {
        "respondents": int(len(respondents)),
        "actors": int(n),
        "ties": ties,
        "dyad_reciprocity": mutual_dyads / dyads if dyads else 0.0,
        "arc_reciprocity": 2 * mutual_dyads / ties if ties else 0.0,
        "components": isolated[0],
        "isolated_share": isolated[1],
        **{f"brokerage_{k}": counts[k] for k in BROKERAGE},
        "brokerage_simple_share": counts["simple"] / total if total else 0.0,
        "density": ties / (n * (n - 1)) if n > 1 else 0.0,
        "named_respondent_share": float(np.isin(target, respondents).mean()) if ties else 0.0,
    }


def brokerage_counts(adj: np.ndarray) -> dict[str, int]:
    """Brokerage configurations of a directed adjacency matrix (no self-ties), each counted once
    by the reciprocation of its two ties (module doc)."""
    open_pair = ~(adj | adj.T)
    counts = dict.fromkeys(BROKERAGE, 0)

    def open_pairs(first, second) -> int:
        return int(open_pair[np.ix_(first, second)].sum())

    for b in np.flatnonzero(adj.any(axis=1)):   # a broker sends at least one tie
        into, out_of = adj[:, b], adj[b, :]
        only_in = np.flatnonzero(into & ~out_of)
        only_out = np.flatnonzero(out_of & ~into)
        mutual = np.flatnonzero(into & out_of)
        counts["simple"] += open_pairs(only_in, only_out)
        counts["recip_in"] += open_pairs(mutual, only_out)
        counts["recip_out"] += open_pairs(only_in, mutual)
        # unordered pairs within the mutual neighbours: the diagonal (a = c) is "open", drop it
        counts["both"] += (open_pairs(mutual, mutual) - len(mutual)) // 2
    return counts


def _share_outside_largest(adj: np.ndarray, respondent_index: np.ndarray) -> tuple[int, float]:
    """Number of weakly connected components, and the share of respondents outside the largest."""
    n = len(adj)
    if n == 0:
        return 0, 0.0
    k, labels = connected_components(coo_matrix((np.ones(int(adj.sum())), np.nonzero(adj)), shape=(n, n)),
                                     directed=True, connection="weak")
    sizes = np.bincount(labels, minlength=k)
    answered = np.bincount(labels[respondent_index], minlength=k)
    candidates = np.flatnonzero(sizes == sizes.max())
    largest = candidates[np.argmax(answered[candidates])]
    share = float(np.mean(labels[respondent_index] != largest)) if len(respondent_index) else 0.0
    return int(k), share


# -- run folder files ------------------------------------------------------------------------------
def survey_files(folder: Path, trust: str) -> tuple[Path, Path]:
    """The edges and actors files of one trust's survey in a run folder."""
    if not trust or not all(c.isalnum() or c in "-_" for c in trust):
        raise ValueError(f"trust name '{trust}' cannot name a survey file (letters, digits, '-', '_')")
    folder = Path(folder)
    return folder / f"survey_network_{trust}.csv", folder / f"survey_actors_{trust}.csv"


def write_survey(folder: Path, trust: str, survey: dict) -> None:
    edges_path, actors_path = survey_files(folder, trust)
    survey["edges"].to_csv(edges_path, index=False, columns=list(EDGE_COLUMNS))
    survey["actors"].to_csv(actors_path, index=False, columns=list(ACTOR_COLUMNS))


def read_survey(folder: Path, trust: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(edges, actors) of one trust's survey as write_survey wrote them."""
    edges_path, actors_path = survey_files(folder, trust)
    return pd.read_csv(edges_path), pd.read_csv(actors_path)
