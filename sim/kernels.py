"""Compiled loops over the tie arrays (numba), for the model's hot spots (benchmarks/bench_model.py).

Each kernel does in one pass what would take several numpy passes and temporaries, and adds in
the same order as ``np.bincount`` does (tie by tie), so results are bit for bit those of the numpy
formulas they replace (tests/test_kernels.py checks each against its numpy reference). Functions
numpy computes with its own SIMD code (``exp``) stay in numpy: numba's differ in the last bit.
Compiled code is cached on disk (``cache=True``): the compile cost is paid once per machine.
"""

from __future__ import annotations

import datetime

import numpy as np
from numba import njit

_JIT = dict(cache=True, nogil=True)


@njit(**_JIT)
def weekly_flows(source, target, weight, reciprocated, one_way_efficiency, capability, practising, engagement, n):
    """Per receiver, over incoming ties weighted by effective weight (reciprocated ties fully, one-way
    ties at ``one_way_efficiency``): the capability gap to more capable sources, practising contacts,
    the contacts' engagement, and the total weight."""
    knowledge_gap = np.zeros(n)
    exposure = np.zeros(n)
    engagement_inflow = np.zeros(n)
    strength = np.zeros(n)
    for e in range(len(source)):
        s, t = source[e], target[e]
        w = weight[e] * (1.0 if reciprocated[e] else one_way_efficiency)
        gap = capability[s] - capability[t]
        knowledge_gap[t] += w * (gap if gap > 0.0 else 0.0)
        exposure[t] += w * (1.0 if practising[s] else 0.0)
        engagement_inflow[t] += w * engagement[s]
        strength[t] += w
    return knowledge_gap, exposure, engagement_inflow, strength


@njit(**_JIT)
def exchange_intensity(source, target, weight, activity, attention_ties, rate_weeks, listener_weight, n):
    """Per tie, the exchange hazard over the period: rate x weeks x strength x the talker's activity x
    their attention share (1 up to ``attention_ties`` of tie strength, less beyond) x the listener's
    part (1 - ``listener_weight`` + ``listener_weight`` x the listener's activity)."""
    out_strength = np.zeros(n)
    for e in range(len(source)):
        out_strength[source[e]] += weight[e]
    intensity = np.empty(len(source))
    for e in range(len(source)):
        s = source[e]
        attention = min(1.0, attention_ties / max(out_strength[s], 1e-12))
        listener = 1.0 - listener_weight + listener_weight * activity[target[e]]
        intensity[e] = rate_weeks * weight[e] * activity[s] * attention * listener
    return intensity


@njit(**_JIT)
def settle_exchange(talked, return_draw, return_probability, engagement, target, lasting, reciprocated,
                    weight, last_active, week, fade_factor, drop_weight, strengthening, max_weight, base_weight):
    """One period of exchange, in place: a tie that ``talked`` carried exchange (``last_active`` = week)
    and grows by ``strengthening`` of its distance to ``max_weight``; the others weaken by ``fade_factor``
    (lasting ties only above ``base_weight``, the weight of a new tie). Returns which ties to keep
    (lasting, or at least ``drop_weight``) and which one-way ties that carried exchange are returned
    (draw under ``return_probability`` x the receiver's engagement)."""
    m = len(talked)
    keep = np.empty(m, dtype=np.bool_)
    returned = np.empty(m, dtype=np.bool_)
    for e in range(m):
        if talked[e]:
            last_active[e] = week
            if weight[e] < max_weight:
                weight[e] += strengthening * (max_weight - weight[e])
        elif lasting[e]:
            if weight[e] > base_weight:   # a formal work tie keeps its base weight; what use added fades
                weight[e] = base_weight + (weight[e] - base_weight) * fade_factor
        else:
            weight[e] *= fade_factor
        returned[e] = talked[e] and not reciprocated[e] and return_draw[e] < return_probability * engagement[target[e]]
        keep[e] = lasting[e] or weight[e] >= drop_weight
    return keep, returned


@njit(**_JIT)
def compact(keep, keys, source, target, weight, lasting, reciprocated, last_active, origin):
    """The tie arrays with only the rows where ``keep`` is true, all fields in one pass."""
    m = int(np.count_nonzero(keep))
    out = (np.empty(m, keys.dtype), np.empty(m, source.dtype), np.empty(m, target.dtype), np.empty(m, weight.dtype),
           np.empty(m, lasting.dtype), np.empty(m, reciprocated.dtype), np.empty(m, last_active.dtype),
           np.empty(m, origin.dtype))
    j = 0
    for i in range(len(keep)):
        if keep[i]:
            out[0][j], out[1][j], out[2][j], out[3][j] = keys[i], source[i], target[i], weight[i]
            out[4][j], out[5][j], out[6][j], out[7][j] = lasting[i], reciprocated[i], last_active[i], origin[i]
            j += 1
    return out


@njit(**_JIT)
def insert_sorted(at, new, old):
    """``old`` with the rows of ``new`` inserted before positions ``at`` (non-decreasing), as np.insert
    would, for each field of the tuples ``old`` and ``new`` (same dtypes), in one pass. Runs between
    insertions are copied element by element when short (a slice costs more than a few elements) and
    as slices when long."""
    o0, o1, o2, o3, o4, o5, o6, o7 = old
    total = len(o0) + len(at)
    out = (np.empty(total, o0.dtype), np.empty(total, o1.dtype), np.empty(total, o2.dtype), np.empty(total, o3.dtype),
           np.empty(total, o4.dtype), np.empty(total, o5.dtype), np.empty(total, o6.dtype), np.empty(total, o7.dtype))
    r0, r1, r2, r3, r4, r5, r6, r7 = out
    src = 0
    dst = 0
    for k in range(len(at) + 1):
        stop = at[k] if k < len(at) else len(o0)
        span = stop - src
        if span < 64:
            for i in range(span):
                r0[dst + i], r1[dst + i], r2[dst + i], r3[dst + i] = o0[src + i], o1[src + i], o2[src + i], o3[src + i]
                r4[dst + i], r5[dst + i], r6[dst + i], r7[dst + i] = o4[src + i], o5[src + i], o6[src + i], o7[src + i]
        else:
            r0[dst:dst + span], r1[dst:dst + span] = o0[src:stop], o1[src:stop]
            r2[dst:dst + span], r3[dst:dst + span] = o2[src:stop], o3[src:stop]
            r4[dst:dst + span], r5[dst:dst + span] = o4[src:stop], o5[src:stop]
            r6[dst:dst + span], r7[dst:dst + span] = o6[src:stop], o7[src:stop]
        dst += span
        src = stop
        if k < len(at):
            r0[dst], r1[dst], r2[dst], r3[dst] = new[0][k], new[1][k], new[2][k], new[3][k]
            r4[dst], r5[dst], r6[dst], r7[dst] = new[4][k], new[5][k], new[6][k], new[7][k]
            dst += 1
    return out


@njit(**_JIT)
def compact_and_insert(keep, new, old):
    """The rows of ``old`` where ``keep`` is true and the rows of ``new`` (keys ``new[0]`` sorted, none equal to a
    kept key), in key order, each field of the tuples in one pass: ``compact`` then ``insert_sorted`` at once."""
    o0, o1, o2, o3, o4, o5, o6, o7 = old
    n0, n1, n2, n3, n4, n5, n6, n7 = new
    total = int(np.count_nonzero(keep)) + len(n0)
    out = (np.empty(total, o0.dtype), np.empty(total, o1.dtype), np.empty(total, o2.dtype), np.empty(total, o3.dtype),
           np.empty(total, o4.dtype), np.empty(total, o5.dtype), np.empty(total, o6.dtype), np.empty(total, o7.dtype))
    r0, r1, r2, r3, r4, r5, r6, r7 = out
    k = 0
    dst = 0
    for i in range(len(keep)):
        if keep[i]:
            while k < len(n0) and n0[k] < o0[i]:
                r0[dst], r1[dst], r2[dst], r3[dst] = n0[k], n1[k], n2[k], n3[k]
                r4[dst], r5[dst], r6[dst], r7[dst] = n4[k], n5[k], n6[k], n7[k]
                k += 1
                dst += 1
            r0[dst], r1[dst], r2[dst], r3[dst] = o0[i], o1[i], o2[i], o3[i]
            r4[dst], r5[dst], r6[dst], r7[dst] = o4[i], o5[i], o6[i], o7[i]
            dst += 1
    while k < len(n0):
        r0[dst], r1[dst], r2[dst], r3[dst] = n0[k], n1[k], n2[k], n3[k]
        r4[dst], r5[dst], r6[dst], r7[dst] = n4[k], n5[k], n6[k], n7[k]
        k += 1
        dst += 1
    return out


@njit(**_JIT)
def divide_shares(source, target, weight, reciprocated, trained, n):
    """Per member of staff, incoming tie weight that is one-way from trained staff, and all incoming weight."""
    handed_down = np.zeros(n)
    total = np.zeros(n)
    for e in range(len(source)):
        t = target[e]
        handed_down[t] += weight[e] * (1.0 if (trained[source[e]] and not reciprocated[e]) else 0.0)
        total[t] += weight[e]
    return handed_down, total


@njit(**_JIT)
def reverse_positions(source, target, reciprocated, n):
    """For each reciprocated tie, the position of its reverse tie (0 elsewhere), as ``np.searchsorted(keys,
    reverse keys)`` gives it. Ties are sorted by source then target; a stable counting sort by target lists each
    node's in-ties by source, and merging them with the node's out-ties (sorted by target) finds every reverse in
    one linear pass (a binary search per tie was three times slower: its branches are unpredictable)."""
    m = len(source)
    out_start = np.zeros(n + 1, dtype=np.int64)   # node j's out-ties are out_start[j]:out_start[j + 1]
    in_start = np.zeros(n + 1, dtype=np.int64)    # and its in-ties incoming[in_start[j]:in_start[j + 1]]
    for e in range(m):
        out_start[source[e] + 1] += 1
        in_start[target[e] + 1] += 1
    for node in range(n):
        out_start[node + 1] += out_start[node]
        in_start[node + 1] += in_start[node]
    fill = in_start[:n].copy()
    incoming = np.empty(m, dtype=np.int64)
    for e in range(m):
        incoming[fill[target[e]]] = e
        fill[target[e]] += 1
    out = np.zeros(m, dtype=np.int64)
    for j in range(n):
        b, b_end = out_start[j], out_start[j + 1]
        for a in range(in_start[j], in_start[j + 1]):
            e = incoming[a]                         # i -> j, in increasing i
            if reciprocated[e]:
                i = source[e]
                while b < b_end and target[b] < i:  # the first of j's out-ties whose target is not below i
                    b += 1
                out[e] = b
    return out


def compile_all() -> None:
    """Compile every kernel for the argument types the model passes (or load them from the disk cache), by running
    a few weeks of a tiny trust. `make setup` calls it once, so no run pays the compile, and no Ctrl-C lands inside
    LLVM's callbacks, which swallow or mangle KeyboardInterrupt."""
    from sim.model import TrustModel          # here, not at the top: the model imports this module
    from sim.params import default_params
    from sim.scenario import load_scenario
    TrustModel(load_scenario("SATH"), default_params(), rng=np.random.default_rng(0), scale=0.02,
               end=datetime.date(2015, 10, 1)).run()


if __name__ == "__main__":
    compile_all()
