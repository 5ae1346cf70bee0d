"""How improvement relationships form, are returned, and fade (ODD 7.4; evidence 1.1, 1.4).

- Ties form through shared work: L4L cohorts (participants with each other and with the KPO member
  who teaches them), RPIW teams, reflective-talk routines; ALT graduates and KPO members become hubs.
  A new tie is one-way: i names j as someone they talk to about improvement.
- Reciprocity emerges from interaction. Every period a tie carries an improvement exchange with a
  probability that rises with its strength, the talker's engagement in the method and the listener's
  (an exchange needs a listener: ``listener_weight``; Cohen and Levinthal 1990), and falls when
  the talker has more ties than they have time for (``attention_ties``). An exchange over a
  reciprocated tie is a conversation and renews both directions. A tie that carries exchange grows
  towards ``tie_max_weight`` (strength is frequency and closeness of interaction: Granovetter 1973).
  A one-way tie that carries exchange is returned (the reverse tie forms) with a probability set by
  the culture (reflective routines, distributed leadership and values work make people talk back)
  and the receiver's engagement. Ties that carry no exchange weaken and, below ``tie_drop_weight``,
  are forgotten; formal work ties stay at their base weight and lose what use added.
- Messengers: on finishing L4L, staff pass the method on to untrained teammates, one way. Where the
  culture makes people talk back those ties are returned; where it does not, the trained act as
  messengers and the divide demotivates the untrained (sim/engagement.py).
- Reflective-talk routines bring staff of different teams together: reciprocated exchange across teams,
  among those who come, who are those who talk about improvement.
- Leaders' exchange: in a receptive culture (values work, distributed clinical leadership, reflective
  routines) those who carry the method in a directorate meet and talk improvement as a group, across their
  teams; in an unreceptive one improvement knowledge does not flow among managers (Table 5.3, SATH).
"""

from __future__ import annotations

import numpy as np

from sim import kernels
from sim.network import NEW_TIE_WEIGHT, ImprovementNetwork


def talk_activity(engagement: np.ndarray, trained: np.ndarray, practising: np.ndarray, p: dict) -> np.ndarray:
    """How much each member of staff talks about improvement (0-1): engagement, full for those who
    carry the method, ``untrained_talk_share`` of it for the others."""
    involved = trained | practising
    return engagement * np.where(involved, 1.0, p["untrained_talk_share"])


def return_probability(culture: float, p: dict) -> float:
    """Chance that a one-way tie carrying exchange is returned in a period, for a fully engaged receiver."""
    return min(p["reciprocity_base"] + p["reciprocity_culture"] * culture, 1.0)


def exchange_and_fade(network: ImprovementNetwork, activity: np.ndarray, engagement: np.ndarray, culture: float,
                      weeks: int, week: int, rng: np.random.Generator, p: dict) -> None:
    """One period of ``weeks``: ties carry exchange or fade; exchanged one-way ties may be returned."""
    if not len(network):
        return
    # a person's time is limited: with more ties than ``attention_ties`` (by strength), each carries less
    # and an exchange needs a listener: it happens more often with a colleague who carries the method
    intensity = kernels.exchange_intensity(network.source, network.target, network.weight, activity,
                                           p["attention_ties"], p["exchange_rate"] * weeks, p["listener_weight"],
                                           network.n)
    talk = 1 - np.exp(-intensity)
    talk_draw, return_draw = rng.random(len(network)), rng.random(len(network))
    talked = talk_draw < talk
    # an exchange over a reciprocated tie is a conversation: it renews the tie in both directions
    talked |= network.reciprocated & talked[network.reverse_positions()]
    # ties that carried exchange are active this week and grow; the others (but formal work ties) weaken
    keep, returned = kernels.settle_exchange(
        talked, return_draw, return_probability(culture, p), engagement, network.target, network.lasting,
        network.reciprocated, network.weight, network.last_active, week, (1 - p["tie_decay_rate"]) ** weeks,
        p["tie_drop_weight"], p["tie_strengthening"], p["tie_max_weight"], NEW_TIE_WEIGHT)
    network.keep_and_add(keep, network.target[returned], network.source[returned], week, "returned")


def tie_counts(n: int, ties_each: float, rng: np.random.Generator) -> np.ndarray:
    """How many ties each of ``n`` members forms: the whole part of ``ties_each``, and one more with the
    chance of its fractional part, so that a swept or calibrated count acts smoothly (a whole number
    draws nothing)."""
    whole, part = divmod(float(ties_each), 1.0)
    counts = np.full(n, int(whole))
    if part > 0:
        counts += rng.random(n) < part
    return counts


def form_among(network: ImprovementNetwork, members: np.ndarray, ties_each: float, week: int, origin: str,
               rng: np.random.Generator) -> None:
    """Each member names ``ties_each`` random other members (one-way; ``tie_counts``)."""
    members = np.asarray(members)
    if len(members) < 2 or ties_each <= 0:
        return
    source = np.repeat(members, tie_counts(len(members), ties_each, rng))
    target = members[rng.integers(0, len(members), size=len(source))]
    network.add(source, target, week, origin)


def form_to(network: ImprovementNetwork, sources: np.ndarray, targets: np.ndarray, week: int, origin: str) -> None:
    network.add(sources, targets, week, origin)


def teammates(members: np.ndarray, ties_each: float, team: np.ndarray, team_first: np.ndarray,
              team_sizes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``ties_each`` random teammates of every member (``tie_counts``; staff are sorted by team): (source, target)."""
    members = np.asarray(members, dtype=np.int64)
    source = np.repeat(members, tie_counts(len(members), ties_each, rng))
    first = team_first[team[source]]
    size = team_sizes[team[source]]
    step = rng.integers(1, np.maximum(size, 2))   # never oneself unless alone in the team
    return source, first + (source - first + step) % size


def messengers(completers: np.ndarray, untrained: np.ndarray, ties_each: float, team: np.ndarray,
               team_first: np.ndarray, team_sizes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ties from L4L completers to untrained teammates: the method handed on, one way."""
    source, target = teammates(completers, ties_each, team, team_first, team_sizes, rng)
    keep = untrained[target] & (source != target)
    return source[keep], target[keep]


def reflective_sessions(activity: np.ndarray, team: np.ndarray, weeks: int, rng: np.random.Generator,
                        p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Pairs brought together across teams by reflective-talk routines in a period (both directions).
    Who comes is who talks about improvement: the chance of joining is the rate times one's talk activity."""
    n = len(activity)
    joining = np.flatnonzero(rng.random(n) < 1 - np.exp(-p["reflective_session_rate"] * weeks * activity))
    if len(joining) < 2 or p["reflective_ties"] <= 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    source = np.repeat(joining, tie_counts(len(joining), p["reflective_ties"], rng))
    target = joining[rng.integers(0, len(joining), size=len(source))]
    other_team = team[source] != team[target]
    source, target = source[other_team], target[other_team]
    return np.concatenate([source, target]), np.concatenate([target, source])


def leaders_exchange(activity: np.ndarray, trained: np.ndarray, team: np.ndarray, directorate: np.ndarray,
                     culture: float, weeks: int, rng: np.random.Generator, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Pairs who talk improvement in a leaders' meeting of their directorate in a period (both directions).

    Each member who carries the method joins with probability 1 - exp(-rate x weeks x activity), rate =
    ``leader_exchange_rate`` x the culture index (values work, values-based recruitment, reflective routines,
    distributed leadership): in a receptive context those who lead improvement lead it together; in an
    unreceptive one improvement knowledge does not flow among them. The untrained take no part, so
    improvement talk concentrates among the trained. Those of one directorate who meet talk as a group:
    every pair of them from different teams (a meeting is a conversation, so every tie is reciprocated)."""
    rate = p["leader_exchange_rate"] * culture
    joining = np.flatnonzero(trained & (rng.random(len(activity)) < 1 - np.exp(-rate * weeks * activity)))
    if len(joining) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    joining = joining[np.argsort(directorate[joining], kind="stable")]
    _, first, meeting, size = np.unique(directorate[joining], return_index=True, return_inverse=True,
                                        return_counts=True)
    # every joiner paired with every joiner of their meeting (themselves and teammates dropped below)
    others = size[meeting]
    source = np.repeat(joining, others)
    within = np.arange(others.sum()) - np.repeat(np.cumsum(others) - others, others)
    target = joining[np.repeat(first[meeting], others) + within]
    other_team = team[source] != team[target]
    return source[other_team], target[other_team]
