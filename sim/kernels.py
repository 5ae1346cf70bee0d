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
def _copy_rows(old, start, stop, out, at):
    """Rows ``start:stop`` of the 8 fields ``old`` into ``out`` from row ``at``: element by element when few (a
    slice costs more than a few elements), as slices when many."""
    o0, o1, o2, o3, o4, o5, o6, o7 = old
    r0, r1, r2, r3, r4, r5, r6, r7 = out
    span = stop - start
    if span < 32:
        for i in range(span):
            r0[at + i], r1[at + i], r2[at + i], r3[at + i] = o0[start + i], o1[start + i], o2[start + i], o3[start + i]
            r4[at + i], r5[at + i], r6[at + i], r7[at + i] = o4[start + i], o5[start + i], o6[start + i], o7[start + i]
    else:
        end = at + span
        r0[at:end], r1[at:end], r2[at:end], r3[at:end] = o0[start:stop], o1[start:stop], o2[start:stop], o3[start:stop]
        r4[at:end], r5[at:end], r6[at:end], r7[at:end] = o4[start:stop], o5[start:stop], o6[start:stop], o7[start:stop]


@njit(**_JIT)
def edit_ties(old, keep, new_keys, week, weight, lasting, origin, n):
    """One edit of the tie arrays ``old`` (the 8 fields of ImprovementNetwork, sorted by key), in one pass: drop the
    rows where ``keep`` is false (an empty ``keep``: drop none), then add the ties ``new_keys`` (sorted, distinct, no
    self-ties): an existing kept tie is strengthened to at least ``weight``, gains ``lasting`` and is active in
    ``week`` (in place, in ``old``); the others are inserted as new rows. Reciprocation follows: the reverses of
    dropped ties lose it, those of new ties gain it, a new tie has it if its reverse exists. Returns whether rows
    were dropped or inserted, and the fields (``old`` itself when not); the same as
    ``ImprovementNetwork.keep_and_add_reference``."""
    keys, source, target, weights, lasting_, reciprocated, last_active, origins = old
    m = len(keys)
    keeping = len(keep) == m and m > 0
    # 1. where each new key falls among the old ones: a kept tie added again is updated, the rest are new rows
    at = np.searchsorted(keys, new_keys)
    is_new = np.zeros(len(new_keys), dtype=np.bool_)
    for k in range(len(new_keys)):
        i = at[k]
        if i < m and keys[i] == new_keys[k] and (not keeping or keep[i]):
            if weights[i] < weight:
                weights[i] = weight
            lasting_[i] = lasting_[i] or lasting
            last_active[i] = week
        else:
            is_new[k] = True        # absent, or dropped now: added anew
    inserted = int(np.count_nonzero(is_new))
    dropped = m - int(np.count_nonzero(keep)) if keeping else 0
    if inserted == 0 and dropped == 0:
        return False, old
    # 2. the kept rows in runs, the new rows between them, in key order
    total = m - dropped + inserted
    out = (np.empty(total, keys.dtype), np.empty(total, source.dtype), np.empty(total, target.dtype),
           np.empty(total, weights.dtype), np.empty(total, lasting_.dtype), np.empty(total, reciprocated.dtype),
           np.empty(total, last_active.dtype), np.empty(total, origins.dtype))
    r0, r1, r2, r3, r4, r5, r6, r7 = out
    gone = np.empty(dropped, dtype=keys.dtype)
    added = np.empty(inserted, dtype=np.int64)     # positions of the new rows in ``out``
    g = 0
    a = 0
    dst = 0
    i = 0
    for k in range(len(new_keys) + 1):
        stop = at[k] if k < len(new_keys) else m     # old rows before the next new key
        while i < stop:
            if keeping and not keep[i]:
                gone[g] = keys[i]
                g += 1
                i += 1
                continue
            run = i + 1
            if keeping:
                while run < stop and keep[run]:
                    run += 1
            else:
                run = stop
            _copy_rows(old, i, run, out, dst)
            dst += run - i
            i = run
        if k < len(new_keys) and is_new[k]:
            key = new_keys[k]
            r0[dst], r1[dst], r2[dst], r3[dst] = key, key // n, key % n, weight
            r4[dst], r5[dst], r6[dst], r7[dst] = lasting, False, week, origin
            added[a] = dst
            a += 1
            dst += 1
    # 3. reciprocation: the reverses of dropped ties lose it, then those of new ties gain it
    for g in range(dropped):
        reverse = (gone[g] % n) * n + gone[g] // n
        j = np.searchsorted(r0, reverse)
        if j < total and r0[j] == reverse:
            r5[j] = False
    for a in range(inserted):
        key = r0[added[a]]
        reverse = (key % n) * n + key // n
        j = np.searchsorted(r0, reverse)
        if j < total and r0[j] == reverse:
            r5[j] = True
            r5[added[a]] = True
    return True, out


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
