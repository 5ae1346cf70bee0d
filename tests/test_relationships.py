"""Relationships emerge (ODD 7.4): exchange gets ties returned and makes them stronger, disuse lets
them fade, an exchange needs a listener, one-way messenger ties make a divide, reflective routines
bring the engaged of different teams together."""

import datetime as dt

import numpy as np

from sim import engagement, relationships
from sim.network import TIE_ORIGINS, ImprovementNetwork
from tests.conftest import run_model


def _one_way_pairs(n_pairs: int) -> ImprovementNetwork:
    net = ImprovementNetwork(2 * n_pairs)
    net.add(np.arange(0, 2 * n_pairs, 2), np.arange(1, 2 * n_pairs, 2), 0, "cohort")
    return net


def test_exchange_gets_ties_returned_and_culture_speeds_it(params):
    n = 400
    returned = {}
    for culture in (0.0, 1.0):
        net = _one_way_pairs(n)
        active = np.ones(2 * n)
        relationships.exchange_and_fade(net, active, active, culture, 4, 4, np.random.default_rng(1), params)
        returned[culture] = net.reciprocated.sum() / 2
    assert 0 < returned[0.0] < returned[1.0] <= n
    # nobody talks, nothing is returned
    net = _one_way_pairs(n)
    relationships.exchange_and_fade(net, np.zeros(2 * n), np.ones(2 * n), 1.0, 4, 4, np.random.default_rng(1), params)
    assert not net.reciprocated.any()


def test_unused_ties_fade_and_are_forgotten_but_work_ties_stay(params):
    net = ImprovementNetwork(4)
    net.add([0], [1], 0, "cohort")
    net.add([2], [3], 0, "work", lasting=True)
    silent = np.zeros(4)
    rng = np.random.default_rng(0)
    for week in range(0, 52 * 10, 4):
        relationships.exchange_and_fade(net, silent, silent, 0.0, 4, week, rng, params)
    assert list(zip(net.source, net.target)) == [(2, 3)]


def test_return_needs_the_receivers_engagement(params):
    n = 400
    net = _one_way_pairs(n)
    talkers = np.ones(2 * n)
    relationships.exchange_and_fade(net, talkers, np.zeros(2 * n), 1.0, 4, 4, np.random.default_rng(2), params)
    assert not net.reciprocated.any()


def test_one_way_ties_from_the_trained_make_a_divide_returned_ones_do_not():
    trained = np.array([True, False, False])
    net = ImprovementNetwork(3)
    net.add([0, 0], [1, 2], 0, "messenger")
    net.add([2], [0], 0, "returned")              # 2 talks back to 0
    share = engagement.divide(net, trained)
    assert share[1] == 1.0 and share[2] == 0.0 and share[0] == 0.0


def test_messengers_reach_only_untrained_teammates():
    rng = np.random.default_rng(3)
    team = np.repeat(np.arange(4), 10)
    first, sizes = np.arange(0, 40, 10), np.full(4, 10)
    untrained = np.ones(40, dtype=bool)
    untrained[[1, 2, 3]] = False
    source, target = relationships.messengers(np.array([0, 15]), untrained, 3, team, first, sizes, rng)
    assert len(source) and untrained[target].all() and (team[source] == team[target]).all()


def test_reflective_routines_raise_cross_team_reciprocity():
    end = dt.date(2017, 6, 30)
    with_routines = run_model("SATH", {"culture": {"reflective_routines": True}}, end=end)
    without = run_model("SATH", end=end)
    net = with_routines.network
    origins = net.origin[net.reciprocated]
    assert (origins == 6).any()                   # 'reflective' ties, returned by construction
    assert with_routines.network.arc_reciprocity() > without.network.arc_reciprocity()


def test_a_ceo_joins_an_l4l_cohort_and_gains_its_ties():
    model = run_model("SASH", end=dt.date(2020, 6, 30))
    ceo = model.ceo_slot
    assert model.staff.l4l[ceo] != 0
    cohort_ties = (model.network.source == ceo) & (model.network.origin == 2)
    assert cohort_ties.any()


def test_used_ties_grow_towards_the_maximum_and_unused_ones_fade(params):
    net = _one_way_pairs(200)
    p = {**params, "exchange_rate": 0.5, "tie_strengthening": 0.3, "tie_max_weight": 3.0}
    talkers = np.ones(400)
    for week in range(0, 52 * 3, 4):
        relationships.exchange_and_fade(net, talkers, talkers, 1.0, 4, week, np.random.default_rng(week), p)
    assert net.weight.max() <= 3.0 and np.median(net.weight) > 2.5
    silent = np.zeros(400)
    for week in range(52 * 3, 52 * 4, 4):
        relationships.exchange_and_fade(net, silent, silent, 1.0, 4, week, np.random.default_rng(week), p)
    assert np.median(net.weight) < 2.5


def test_a_work_tie_keeps_its_base_weight_and_loses_what_use_added(params):
    net = ImprovementNetwork(2)
    net.add([0], [1], 0, "work", lasting=True)
    net.weight[:] = 2.8
    silent = np.zeros(2)
    for week in range(0, 52 * 20, 4):
        relationships.exchange_and_fade(net, silent, silent, 0.0, 4, week, np.random.default_rng(0), params)
    assert len(net) == 1 and 1.0 <= net.weight[0] < 1.01


def test_a_conversation_over_a_reciprocated_tie_renews_both_directions(params):
    net = ImprovementNetwork(2 * 300)
    net.add(np.arange(0, 600, 2), np.arange(1, 600, 2), 0, "cohort")
    net.add(np.arange(1, 600, 2), np.arange(0, 600, 2), 0, "returned")
    activity = np.tile([1.0, 0.0], 300)            # only the even people start conversations
    p = {**params, "listener_weight": 0.0, "exchange_rate": 0.5}
    relationships.exchange_and_fade(net, activity, np.ones(600), 1.0, 4, 8, np.random.default_rng(4), p)
    from_odd = net.source % 2 == 1
    assert (net.last_active[from_odd] == 8).any()
    pair_active = net.last_active[~from_odd] == 8
    assert np.array_equal(pair_active, net.last_active[from_odd] == 8)


def test_nobody_talks_improvement_to_a_listener_who_does_not_engage(params):
    n = 400
    net = _one_way_pairs(n)
    activity = np.tile([1.0, 0.0], n)              # talkers are even, listeners odd and not engaged
    p = {**params, "listener_weight": 1.0, "exchange_rate": 0.5}
    relationships.exchange_and_fade(net, activity, np.ones(2 * n), 1.0, 4, 8, np.random.default_rng(5), p)
    assert not (net.last_active == 8).any()
    half = {**p, "listener_weight": 0.5}
    relationships.exchange_and_fade(net, activity, np.ones(2 * n), 1.0, 4, 12, np.random.default_rng(5), half)
    assert (net.last_active == 12).any()


def test_reflective_sessions_draw_those_who_talk_about_improvement(params):
    rng = np.random.default_rng(6)
    team = np.repeat(np.arange(100), 10)
    activity = np.where(np.arange(1000) < 500, 1.0, 0.0)
    source, target = relationships.reflective_sessions(activity, team, 52, rng, {**params, "reflective_session_rate": 0.05})
    assert len(source) and (source < 500).all() and (target < 500).all()
    assert (team[source] != team[target]).all()


def test_a_fractional_tie_count_is_the_chance_of_one_more():
    net = ImprovementNetwork(1000)
    relationships.form_among(net, np.arange(1000), 2.5, 0, "cohort", np.random.default_rng(7))
    per_member = np.bincount(net.source, minlength=1000)
    assert set(np.unique(per_member)) <= {1, 2, 3} and 2.3 < per_member.mean() < 2.6


def test_leaders_meet_as_a_group_within_their_directorate_and_more_in_a_receptive_culture(params):
    team = np.repeat(np.arange(20), 10)
    directorate = team // 5
    trained = np.zeros(200, dtype=bool)
    trained[::3] = True
    activity = np.ones(200)
    p = {**params, "leader_exchange_rate": 0.2}
    pairs = {}
    for culture in (0.0, 0.2, 0.8):
        source, target = relationships.leaders_exchange(activity, trained, team, directorate, culture, 4,
                                                        np.random.default_rng(5), p)
        assert trained[source].all() and trained[target].all()          # the untrained take no part
        assert (team[source] != team[target]).all()                     # across teams
        assert (directorate[source] == directorate[target]).all()       # within a directorate
        assert sorted(zip(source, target)) == sorted(zip(target, source))   # a conversation: both ways
        assert len(set(zip(source, target))) == len(source)              # each pair once per direction
        pairs[culture] = len(source)
    assert pairs[0.0] == 0 < pairs[0.2] < pairs[0.8]
    # everyone at a meeting talks with everyone there from another team
    every = {**params, "leader_exchange_rate": 100.0}
    source, target = relationships.leaders_exchange(activity, trained, team, directorate, 1.0, 4,
                                                    np.random.default_rng(5), every)
    members = np.flatnonzero(trained & (directorate == 0))
    expected = sum(team[a] != team[b] for a in members for b in members)
    assert ((directorate[source] == 0).sum()) == expected


def test_leaders_exchange_concentrates_ties_among_the_trained_in_a_receptive_culture(params):
    end, p = dt.date(2019, 6, 30), {**params, "leader_exchange_rate": 0.5}
    receptive = run_model("SATH", {"culture": {"distributed_leadership": 0.8}}, params=p, end=end)
    unreceptive = run_model("SATH", {"culture": {"distributed_leadership": 0.0}}, params=p, end=end)   # culture 0
    leadership = TIE_ORIGINS.index("leadership")
    assert (receptive.network.origin == leadership).sum() > 0 == (unreceptive.network.origin == leadership).sum()

    def among_trained(model):
        trained, net = model.staff.trained(), model.network
        return (trained[net.source] & trained[net.target]).mean()
    assert among_trained(receptive) > among_trained(unreceptive)


def test_a_fractional_tie_count_is_the_chance_of_one_more_and_a_whole_one_draws_nothing():
    rng, untouched = np.random.default_rng(4), np.random.default_rng(4)
    assert (relationships.tie_counts(50, 3.0, rng) == 3).all()
    assert rng.random() == untouched.random()          # a whole count leaves the random stream as it was
    counts = relationships.tie_counts(200_000, 2.25, rng)
    assert set(np.unique(counts)) == {2, 3} and abs(counts.mean() - 2.25) < 0.01
    team = np.repeat(np.arange(20), 10)                # 20 teams of 10, sorted by team as the model keeps staff
    source, target = relationships.teammates(np.arange(200), 1.5, team, np.arange(0, 200, 10), np.full(20, 10), rng)
    assert 250 < len(source) < 350 and (team[source] == team[target]).all() and (source != target).all()
