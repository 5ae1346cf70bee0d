"""Each mechanism moves its outcome in the direction the evidence says, against a run without it."""

import datetime as dt

import numpy as np

from sim.context import week_of
from sim import knowledge
from sim.network import TIE_ORIGINS, ImprovementNetwork
from sim.params import default_params
from sim.runner import simulate
from sim.scenario import load_scenario
from sim.staff import COMPLETE, IN_PROGRESS
from tests.conftest import run_model


def _series(model, column):
    return model.datacollector.get_model_vars_dataframe()[column].to_numpy()


def test_ceo_change_lowers_engagement():
    end = dt.date(2019, 12, 31)
    with_change = run_model("SATH", end=end)
    first_only = load_scenario("SATH").leadership.changes[:1]          # keep the 2015 arrival
    without = run_model("SATH", {"leadership": {"changes": [c.model_dump(mode="json") for c in first_only]}}, end=end)
    change_week = week_of(with_change.trust, dt.date(2019, 7, 1))
    after = slice(change_week, change_week + 12)
    assert _series(with_change, "engagement_mean")[after].mean() < _series(without, "engagement_mean")[after].mean() - 0.02
    # before the change the two runs are the same run
    assert np.allclose(_series(with_change, "engagement_mean")[:change_week],
                       _series(without, "engagement_mean")[:change_week])


def test_distributed_leadership_buffers_a_ceo_change():
    end = dt.date(2019, 12, 31)
    week = week_of(run_model("SATH", end=dt.date(2015, 8, 1)).trust, dt.date(2019, 7, 1))
    drops = {}
    for dl in (0.0, 0.9):
        a = run_model("SATH", {"culture": {"distributed_leadership": dl}}, end=end)
        b = run_model("SATH", {"culture": {"distributed_leadership": dl}, "leadership": {"changes": []}}, end=end)
        drops[dl] = _series(b, "engagement_mean")[week + 2] - _series(a, "engagement_mean")[week + 2]
    assert drops[0.9] < drops[0.0]


def test_regulatory_episode_cuts_rpiws():
    held = {}
    for label, overrides in (("with", None), ("without", {"regulation": {"episodes": []}})):
        held[label] = sum(run_model("SATH", overrides, seed=s).improvement.held for s in (1, 2, 3))
    assert held["with"] < held["without"]


def test_relational_regulator_softens_pressure():
    traditional = sum(run_model("BHRUT", seed=s).improvement.held for s in (1, 2, 3))
    relational = sum(run_model("BHRUT", {"regulation": {"style": "relational"}}, seed=s).improvement.held for s in (1, 2, 3))
    assert relational > traditional


def test_reciprocated_tie_carries_more_knowledge_than_one_way():
    net = ImprovementNetwork(4)
    net.add([0], [1], 0, "work")              # 0 -> 1, one way
    net.add([2, 3], [3, 2], 0, "work")        # 2 <-> 3, reciprocated
    capability = np.array([1.0, 0.0, 1.0, 0.0])
    gain = net.knowledge_gain(capability, one_way_efficiency=0.35)
    assert gain[3] > gain[1] > 0
    assert gain[0] == 0  # nothing flows against a one-way tie's direction


def test_adoption_needs_reinforcement_from_several_contacts(params):
    """Complex contagion: two practising contacts give more than twice the pull of one."""
    def pull(k):
        net = ImprovementNetwork(k + 1)
        net.add(np.arange(1, k + 1), np.zeros(k, dtype=int), 0, "work")
        net.add(np.zeros(k, dtype=int), np.arange(1, k + 1), 0, "work")
        exposure = net.inflow(np.r_[0.0, np.ones(k)], params["one_way_efficiency"])
        return knowledge.adoption_pull(exposure, params)[0]
    assert pull(2) > 2 * pull(1)
    assert knowledge.adoption_pull(np.array([2.0]), dict(params, adoption_steepness=1.0))[0] > pull(1) > 0


def test_cohorts_stay_within_20_to_30():
    model = run_model("SASH", scale=1.0, end=dt.date(2018, 6, 30))
    assert model.training.cohort_sizes, "no cohort started"
    assert all(20 <= size <= 30 for size in model.training.cohort_sizes)


def test_counts_never_exceed_staff():
    model = run_model("SATH")
    frame = model.datacollector.get_model_vars_dataframe()
    trained = frame["l4l_complete"] + frame["l4l_in_progress"]
    assert (trained <= frame["staff"]).all()
    assert (frame["alt_complete"] + frame["alt_in_progress"] <= frame["staff"]).all()
    assert frame["practising_share"].between(0, 1).all()


def test_leavers_are_replaced_and_their_ties_removed():
    model = run_model("SASH", end=dt.date(2017, 6, 30))
    s = model.staff
    leavers = np.flatnonzero(s.l4l == COMPLETE)[:3]
    assert len(leavers) == 3
    before_ids = [model.staff_agents[i].unique_id for i in leavers]
    n_agents = len(model.agents)
    model.network.add(np.full(5, leavers[0]), np.arange(5) + 100, model.week, "cohort", weight=0.5)  # project ties
    model._replace(leavers)
    assert len(model.agents) == n_agents
    assert all(model.staff_agents[i].unique_id != old for i, old in zip(leavers, before_ids))
    assert (s.l4l[leavers] == 0).all() and (s.capability[leavers] < 0.1).all()
    net = model.network
    involved = np.isin(net.source, leavers) | np.isin(net.target, leavers)
    # the leavers took their relationships; the recruits hold only the posts' formal work ties
    origins = np.asarray(TIE_ORIGINS)[net.origin[involved]]
    assert involved.any() and set(origins) <= {"work", "cross_team"}
    assert net.lasting[involved].all()
    assert not ((origins == "cohort") | (origins == "returned")).any()


def test_dropout_is_higher_where_engagement_is_low(params):
    low = dict(params, engagement_baseline=0.1, culture_engagement_weight=0.0)
    high = dict(params, engagement_baseline=0.5)
    drop = {k: sum(run_model("UHCW", seed=s, params=p).training.dropouts for s in (1, 2)) for k, p in (("low", low), ("high", high))}
    assert drop["low"] > drop["high"]


def test_cultural_work_raises_reciprocity_and_engagement():
    with_culture = run_model("SASH")
    without = run_model("sash_no_cultural_work")
    assert with_culture.network.arc_reciprocity() > without.network.arc_reciprocity() + 0.05
    assert with_culture.staff.engagement.mean() > without.staff.engagement.mean()


def test_covid_stops_rpiws():
    model = run_model("SATH", {"regulation": {"episodes": []}})
    weeks = np.array(model.improvement.week_held)
    covid = week_of(model.trust, dt.date(2020, 3, 23))
    assert (weeks < covid).any() and not (weeks >= covid).any()


def test_staff_agents_are_inspectable_views():
    model = run_model("SASH", end=dt.date(2016, 12, 31))
    assert len(model._all_agents) == 0          # nobody asked: no agent objects were made
    agent = model.agent_at(0)
    assert agent.slot == 0 and agent.role in ("doctor", "nurse_ahp", "manager", "support")
    model.staff.engagement[0] = 0.42
    assert agent.engagement == 0.42
    assert all(isinstance(c.slot, int) for c in agent.contacts)
    assert len(model.agents) == model.staff.n
    assert model.agent_at(0) is agent and model.staff_agents[:3][0] is agent


def test_values_work_during_the_run_builds_culture_over_time():
    overrides = {"culture": {"values_work_during": {"start": "2015-07-01", "end": "2017-06-30"}}}
    model = run_model("SATH", overrides, end=dt.date(2018, 6, 30))
    culture = model.ctx.culture
    begins, ends = week_of(model.trust, dt.date(2015, 7, 1)), week_of(model.trust, dt.date(2017, 6, 30))
    assert culture[0] == culture[begins] == run_model("SATH", end=dt.date(2015, 8, 1)).ctx.culture[0]
    middle = (begins + ends) // 2
    assert culture[middle] > culture[0] and culture[-1] == culture[ends + 1] > culture[middle]


def test_relapse_does_not_touch_the_90_day_measure(params):
    """Follow-up holds an RPIW's gain for 120 days: the 90-day lead time (what Table 7.2 reports)
    is the same whatever the relapse rate, while later, unsustained gains decay."""
    a = run_model("UHCW", params=dict(params, relapse_rate=0.0), end=dt.date(2017, 12, 31)).improvement
    b = run_model("UHCW", params=dict(params, relapse_rate=0.1), end=dt.date(2017, 12, 31)).improvement
    measured = ~np.isnan(a.post_90)
    assert measured.any()
    assert np.allclose(np.asarray(a.post_90)[measured], np.asarray(b.post_90)[measured])
    assert sum(b.removed) < sum(a.removed)


def test_turnaround_support_raises_the_level_only_under_special_measures(params):
    """Special measures bring external turnaround support (a higher quality level while it lasts, and
    KPO time displaced); regulatory action brings pressure but no support; the same in every trust."""
    end = dt.date(2017, 3, 1)
    with_support = run_model("BHRUT", params=dict(params, turnaround_quality_support=1.0), end=end)
    without = run_model("BHRUT", params=dict(params, turnaround_quality_support=0.0), end=end)
    assert with_support.contributions_total["support"] > 0.3
    assert without.contributions_total["support"] == 0.0
    assert with_support.quality > without.quality
    in_measures = week_of(with_support.trust, dt.date(2015, 7, 1))
    assert with_support.kpo_capacity(in_measures) < with_support.ctx.kpo_staff[in_measures] * (1 - params["kpo_diversion"]) + 1e-9
    action = {"regulation": {"episodes": [{"start": "2013-12-01", "end": "2017-03-31", "kind": "regulatory_action"}]}}
    a = run_model("BHRUT", action, params=dict(params, turnaround_quality_support=1.0), end=end)
    b = run_model("BHRUT", action, params=dict(params, turnaround_quality_support=0.0), end=end)
    assert a.quality == b.quality and a.contributions_total["support"] == 0.0


def test_a_ceo_who_arrived_as_the_programme_began_leaves_instability():
    """The current CEO's arrival is a CEO change like any other: arriving at the start it leaves the
    full unbuffered jump, arriving years before it leaves almost none."""
    arrived_at_start = run_model("SATH", {"leadership": {"ceo_in_post_since": "2013-07-01"}}, end=dt.date(2015, 7, 1))
    long_serving = run_model("SATH", {"leadership": {"ceo_in_post_since": "2008-07-01"}}, end=dt.date(2015, 7, 1))
    jump = 1 - arrived_at_start.trust.culture.distributed_leadership
    assert _series(arrived_at_start, "instability")[0] > 0.95 * jump
    assert _series(long_serving, "instability")[0] < 0.01
    # the instability it leaves lowers the quality index, as a change during the run would
    end = dt.date(2014, 7, 1)
    a = run_model("SATH", {"leadership": {"ceo_in_post_since": "2013-07-01"}}, end=end)
    b = run_model("SATH", {"leadership": {"ceo_in_post_since": "2008-07-01"}}, end=end)
    assert a.contributions_total["instability"] < b.contributions_total["instability"] <= 0


def test_lead_time_is_read_from_the_audits_sample_without_touching_the_run():
    """Table 7.2 measured some RPIWs, not all: the summary reads a random sample of that size, drawn
    after the run, so the simulated trajectory is the same with or without the audit."""
    end = dt.date(2019, 12, 31)
    audited = simulate(load_scenario("SATH"), default_params(), seed=5, scale=0.1, end=end)
    full = simulate(load_scenario("SATH", overrides={"lead_time_audit": None}), default_params(),
                    seed=5, scale=0.1, end=end)
    assert audited.timeseries.equals(full.timeseries)
    assert full.summary["rpiws_measured_2019_07"] > 29
    assert audited.summary["rpiws_measured_2019_07"] == 29
    assert audited.summary["lead_time_baseline_hours"] < full.summary["lead_time_baseline_hours"]


def test_isolated_practisers_lapse_sooner_when_practice_needs_reinforcement(params):
    """practice_isolation_abandon: with it, a practiser whom no practising colleague talks to stops (1 + factor) times
    as often as at 0; one with ample practising contacts about as often; at 0 exposure changes nothing."""
    n = 200_000
    practising, engagement = np.ones(n, dtype=bool), np.full(n, 0.5)
    draw = np.random.default_rng(0).random(n)
    alone, surrounded = np.zeros(n), np.full(n, 50.0)

    def lapsed(exposure, factor):
        p = dict(params, abandon_rate=0.02, practice_isolation_abandon=factor)
        return 1 - knowledge.adopt_and_abandon(practising, engagement, exposure, draw, 0.0, p).mean()

    assert lapsed(alone, 0.0) == lapsed(surrounded, 0.0)
    assert np.isclose(lapsed(alone, 4.0), 5 * lapsed(alone, 0.0), rtol=0.05)
    assert np.isclose(lapsed(surrounded, 4.0), lapsed(surrounded, 0.0), rtol=0.05)
