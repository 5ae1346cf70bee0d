"""The compiled kernels (sim/kernels.py) give bit for bit what the numpy formulas they replace give."""

import numpy as np
import pytest

from sim import kernels
from sim.network import ImprovementNetwork


@pytest.fixture
def network():
    rng = np.random.default_rng(7)
    net = ImprovementNetwork(300)
    net.add(rng.integers(0, 300, 3000), rng.integers(0, 300, 3000), 0, "work", lasting=True)
    net.add(rng.integers(0, 300, 1500), rng.integers(0, 300, 1500), 3, "cohort", weight=0.4)
    net.weight[:] = rng.uniform(0.05, 1.0, len(net))
    return net


def test_weekly_flows_equal_the_numpy_flows_exactly(network):
    rng = np.random.default_rng(1)
    capability, engagement = rng.random(network.n), rng.random(network.n)
    practising = rng.random(network.n) < 0.3
    knowledge_gap, exposure, engagement_inflow, strength = network.weekly_flows(capability, practising, engagement, 0.35)
    assert np.array_equal(knowledge_gap, network.knowledge_gain(capability, 0.35))
    assert np.array_equal(exposure, network.inflow(practising.astype(float), 0.35))
    assert np.array_equal(engagement_inflow, network.inflow(engagement, 0.35))
    assert np.array_equal(strength, network.in_strength(0.35))
    assert knowledge_gap.sum() > 0 and exposure.sum() > 0


def test_exchange_intensity_equals_the_numpy_formula(network):
    activity = np.random.default_rng(2).random(network.n)
    out_strength = np.bincount(network.source, weights=network.weight, minlength=network.n)
    attention = np.minimum(1.0, 3.0 / np.maximum(out_strength, 1e-12))[network.source]
    listener = 1 - 0.7 + 0.7 * activity[network.target]
    expected = 0.2 * 4 * network.weight * activity[network.source] * attention * listener
    assert np.array_equal(kernels.exchange_intensity(network.source, network.target, network.weight, activity, 3.0,
                                                     0.2 * 4, 0.7, network.n), expected)
    assert (attention < 1).any()     # the attention limit binds for some talkers


@pytest.mark.parametrize("with_keep", [False, True])
def test_edit_ties_equals_the_numpy_edit(network, with_keep):
    """One compiled edit (drop, strengthen the existing, insert the new, fix reciprocation) gives the same arrays
    as the numpy formulas, including ties added again while dropped and ties whose reverse is added with them."""
    import copy

    rng = np.random.default_rng(8)
    keep = rng.random(len(network)) < 0.8 if with_keep else None
    dropped = np.flatnonzero(~keep)[:20] if with_keep else np.arange(0)
    source = np.concatenate([rng.integers(0, 300, 400), network.source[dropped], network.target[:30],
                             network.source[100:130], [5, 6, 7]])
    target = np.concatenate([rng.integers(0, 300, 400), network.target[dropped], network.source[:30],
                             network.target[100:130], [6, 5, 7]])          # a pair both ways, and a self-tie
    reference = copy.deepcopy(network)
    reference.keep_and_add_reference(keep, source, target, 11, "returned", weight=1.5, lasting=True)
    network.keep_and_add(keep, source, target, 11, "returned", weight=1.5, lasting=True)
    assert all(np.array_equal(a, b) for a, b in zip(network._fields(), reference._fields()))
    assert (network.last_active == 11).sum() > 400 and (network.weight == 1.5).any()


def test_reverse_positions_equal_the_numpy_search(network):
    reverse = network.reverse_positions()
    assert np.array_equal(reverse, network.reverse_positions_reference())
    both = np.flatnonzero(network.reciprocated)
    assert len(both) > 0 and np.array_equal(network.source[reverse[both]], network.target[both])
    network.reciprocated[:] = True                 # also where no reverse exists: the same insertion point
    assert np.array_equal(network.reverse_positions(), network.reverse_positions_reference())


def test_keep_and_add_equals_keep_then_add(network):
    import copy

    rng = np.random.default_rng(6)
    keep = rng.random(len(network)) < 0.8
    dropped = np.flatnonzero(~keep)[:20]                   # some added ties were dropped in the same edit
    source = np.concatenate([rng.integers(0, 300, 400), network.source[dropped], network.target[:30]])
    target = np.concatenate([rng.integers(0, 300, 400), network.target[dropped], network.source[:30]])
    one_by_one = copy.deepcopy(network)
    one_by_one.keep(keep)
    one_by_one.add(source, target, 11, "returned")
    network.keep_and_add(keep, source, target, 11, "returned")
    assert all(np.array_equal(a, b) for a, b in zip(network._fields(), one_by_one._fields()))


def test_ties_stay_sorted_and_reciprocity_consistent_after_edits(network):
    network.keep(np.random.default_rng(5).random(len(network)) < 0.8)
    network.add(np.arange(0, 100), np.arange(1, 101), 9, "returned")
    assert (np.diff(network.keys) > 0).all()
    assert np.array_equal(network.source * network.n + network.target, network.keys)
    reverse_exists = np.isin(network.reverse_keys(network.keys), network.keys)
    assert np.array_equal(network.reciprocated, reverse_exists)


def test_settle_exchange_equals_the_numpy_formulas(network):
    rng = np.random.default_rng(6)
    m = len(network)
    talk, talk_draw, return_draw = rng.random(m) * 0.5, rng.random(m), rng.random(m)
    engagement = rng.random(network.n)
    network.weight[::3] = 2.5                   # some ties have grown with use
    weight, last_active = network.weight.copy(), network.last_active.copy()
    talked = talk_draw < talk
    last_active[talked] = 12
    grow = talked & (weight < 3.0)
    weight[grow] += 0.25 * (3.0 - weight[grow])
    weight[~talked & ~network.lasting] *= 0.8
    faded_work = ~talked & network.lasting & (weight > 1)
    weight[faded_work] = 1 + (weight[faded_work] - 1) * 0.8
    expected_returned = talked & ~network.reciprocated & (return_draw < 0.6 * engagement[network.target])
    expected_keep = network.lasting | (weight >= 0.3)
    keep, returned = kernels.settle_exchange(talked, return_draw, 0.6, engagement, network.target,
                                             network.lasting, network.reciprocated, network.weight,
                                             network.last_active, 12, 0.8, 0.3, 0.25, 3.0, 1.0)
    assert np.array_equal(network.weight, weight) and np.array_equal(network.last_active, last_active)
    assert np.array_equal(keep, expected_keep) and np.array_equal(returned, expected_returned)
    assert returned.any() and not keep.all() and faded_work.any() and grow.any()
