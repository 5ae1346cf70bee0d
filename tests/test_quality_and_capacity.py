"""Quality is a level set by the state (ODD 7.8); the KPO's time is one budget (ODD 7.5); value
streams are chosen from the culture (ODD 7.6); defects and the pre-programme rating are outputs."""

import datetime as dt

import numpy as np

from sim import quality
from sim.context import build_context
from sim.kpo import KpoBudget
from sim.scenario import load_scenario
from tests.conftest import run_model


def test_quality_settles_at_the_level_its_state_sets(params):
    p = dict(params, quality_noise=0.0)
    terms = quality.level_terms(0.7, 0.1, 0.5, 0.0, 0.2, 0.0, p)
    level = quality.settled_level(terms, p)
    for start in (0.2, 3.8):
        q = start
        for _ in range(52 * 15):
            q += sum(quality.weekly_contributions(q, terms, 0.0, p).values())
        assert abs(q - level) < 0.01


def test_no_term_pulls_towards_a_rating(params):
    """With every state term at zero the level is the shared reference, whatever the trust."""
    p = dict(params, quality_system_decline=0.0)
    terms = quality.level_terms(p["engagement_reference"], 0.0, 0.0, 0.0, 0.0, 0.0, p)
    assert quality.settled_level(terms, p) == p["quality_reference"]


def test_the_start_takes_in_a_ceo_arrival_as_a_change_during_the_run_would(params):
    """quality_start_lag 1: the index has followed none of an arrival on the first day, part of it after a year,
    and little remains once the CEO has served for years; the weekly recurrence is the ODE's solution
    -a T / (T - tau) (exp(-s / T) - exp(-s / tau)) (a: the loss at arrival, T: instability_time, tau:
    quality_time_constant) to within discretisation."""
    p = dict(params, quality_instability_loss=1.5, instability_time=52, quality_time_constant=104)
    a, big_t, tau = 1.5 * 0.8, 52.0, 104.0
    assert quality.instability_followed(0.8, 0, p) == 0.0
    for weeks in (26, 52, 156, 520):
        exact = -a * big_t / (big_t - tau) * (np.exp(-weeks / big_t) - np.exp(-weeks / tau))
        assert abs(quality.instability_followed(0.8, weeks, p) - exact) < 0.02 * a
    peak = min(quality.instability_followed(0.8, w, p) for w in range(0, 520, 4))
    assert -0.3 * a < peak < -0.2 * a     # at most a quarter of the loss (T = tau / 2), never all of it


def test_the_start_rule_changes_only_the_instability_term(params):
    """A CEO who arrives on the first day (LTHT, 2013): with the lag the index starts a whole instability loss
    higher than without it (the same seed, so the same initial draw), and a long-serving CEO's trust (SASH, 2010)
    starts a little lower, what the index had not yet recovered."""
    from sim.model import TrustModel
    from sim.scenario import load_scenario as load

    def start(name, lag):
        p = dict(params, quality_start_lag=lag)
        return TrustModel(load(name), p, rng=np.random.default_rng(3), scale=0.02)

    off, on = start("LTHT", 0.0), start("LTHT", 1.0)
    assert off.instability == on.instability > 0.5
    assert np.isclose(on.quality - off.quality, params["quality_instability_loss"] * min(off.instability, 1.0))
    sash_off, sash_on = start("SASH", 0.0), start("SASH", 1.0)
    assert -0.2 * params["quality_instability_loss"] < sash_on.quality - sash_off.quality < 0


def test_contributions_add_up_to_the_change():
    model = run_model("SATH", end=dt.date(2016, 6, 30))
    frame = model.datacollector.get_model_vars_dataframe()
    summed = frame.filter(like="quality_contribution_").sum(axis=1).to_numpy()
    assert np.allclose(np.diff(frame["quality"].to_numpy()), summed[1:])
    assert np.isclose(sum(model.contributions_total.values()), model.quality - frame["quality"].iloc[0] + summed[0])


def test_kpo_budget_serves_ongoing_work_first_and_scales_down_without_steps(params):
    ctx = build_context(load_scenario("SATH"), params)
    week = int(np.argmax(ctx.programme_active))
    budget = KpoBudget(ctx, params)
    budget.open_week(week)
    assert budget.free == ctx.kpo_staff[week]
    assert budget.serve(ctx.kpo_staff[week] * 2) == 0.5         # half of what ongoing work needs
    assert not budget.start(0.1)                                # nothing left for new work
    # RPIWs held fall gradually, not from all to nothing, as pressure diverts more KPO time
    held = [sum(run_model("SATH", params=dict(params, kpo_diversion=d), seed=s).improvement.held for s in (1, 2))
            for d in (0.0, 0.5, 0.9)]
    assert held[0] > held[1] > held[2] > 0


def test_value_streams_are_chosen_as_the_evaluation_reports():
    end = dt.date(2015, 8, 31)
    chosen = {t: run_model(t, end=end).value_stream_selection for t in ("SASH", "LTHT", "UHCW", "SATH", "BHRUT")}
    assert chosen == {"SASH": "top_down", "LTHT": "top_down", "UHCW": "top_down",
                      "SATH": "bottom_up", "BHRUT": "bottom_up"}
    # cultural work first changes the choice: it is the culture that chooses, not the trust's name
    assert run_model("national_culture_first_sath", end=dt.date(2017, 8, 31)).value_stream_selection == "top_down"


def test_defects_and_the_pre_programme_rating_are_outputs():
    from sim.params import default_params
    from sim.runner import simulate
    s = simulate(load_scenario("SASH"), default_params(), seed=2, scale=0.1, end=dt.date(2019, 12, 31)).summary
    assert "2014" in s["cqc"]
    assert 0 < s["defects_post"] < s["defects_baseline"]
    assert 0 < s["defects_reduction"] < 1
