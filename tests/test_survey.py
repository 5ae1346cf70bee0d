"""The December 2018 survey emulation (sim/survey.py): its measures on toy graphs, against networkx
and brute force, and the sampling and naming on a small hand-built model."""

import itertools
from types import SimpleNamespace

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from sim.calibration.targets import load_targets, simulated_statistics
from sim.params import default_params
from sim.network import ImprovementNetwork
from sim.staff import COMPLETE, DROPPED, IN_PROGRESS, NONE
from sim.survey import (ACTOR_COLUMNS, EDGE_COLUMNS, GRAPH_MEASURES, MEASURES, brokerage_counts, emulate_survey, network_measures,
                        read_survey, survey_files, write_survey)

# -- measures ---------------------------------------------------------------------------------------


def frame(ties) -> pd.DataFrame:
    return pd.DataFrame(ties, columns=["source", "target"], dtype="int64")


def test_measures_on_a_hand_counted_network():
    # 0 -> 1 -> 3 (one-way both: simple through 1); 4 <-> 2 <-> 6 and 2 -> 5 one-way.
    # Through 2: (4, 5) and (6, 5) reciprocated in, {4, 6} both reciprocated: one configuration.
    edges = frame([(0, 1), (1, 3), (4, 2), (2, 4), (2, 5), (2, 6), (6, 2)])
    m = network_measures(edges, [0, 1, 2, 4, 6])
    assert (m["respondents"], m["actors"], m["ties"]) == (5, 7, 7)
    assert (m["brokerage_simple"], m["brokerage_recip_in"], m["brokerage_recip_out"], m["brokerage_both"]) \
        == (1, 2, 0, 1)
    assert m["brokerage_simple_share"] == pytest.approx(1 / 4)
    assert m["dyad_reciprocity"] == pytest.approx(2 / 5)      # tied dyads 0-1 1-3 2-4 2-5 2-6; mutual 2-4 2-6
    assert m["arc_reciprocity"] == pytest.approx(4 / 7)
    assert m["components"] == 2                                # {0, 1, 3} and {2, 4, 5, 6}
    assert m["isolated_share"] == pytest.approx(2 / 5)         # respondents 0 and 1 are outside the larger
    assert m["density"] == pytest.approx(7 / 42)
    assert m["named_respondent_share"] == pytest.approx(5 / 7)  # all but 1 -> 3 and 2 -> 5 reach one who answered


def test_each_brokerage_class_once_and_closed_or_star_triads_not_at_all():
    assert brokerage_counts(nx.to_numpy_array(nx.DiGraph([(0, 1), (1, 2)]), nodelist=[0, 1, 2]) > 0) == \
        {"simple": 1, "recip_in": 0, "recip_out": 0, "both": 0}
    recip_out = frame([(0, 1), (1, 2), (2, 1)])               # 0 -> 1 one-way, 1 <-> 2
    assert network_measures(recip_out, [0, 1, 2])["brokerage_recip_out"] == 1
    both = network_measures(frame([(0, 1), (1, 0), (1, 2), (2, 1)]), [0, 1, 2])
    assert both["brokerage_both"] == 1                         # once, not once per direction
    closed = network_measures(frame([(0, 1), (1, 2), (0, 2)]), [0, 1])
    out_star = network_measures(frame([(1, 0), (1, 2)]), [1])
    in_star = network_measures(frame([(0, 1), (2, 1)]), [0, 2])
    for m in (closed, out_star, in_star):
        assert sum(m[f"brokerage_{k}"] for k in ("simple", "recip_in", "recip_out", "both")) == 0


def brute_force_brokerage(graph: nx.DiGraph) -> dict[str, int]:
    """Every broker b and unordered pair {a, c}: a 2-path through b either way, a and c untied."""
    counts = {"simple": 0, "recip_in": 0, "recip_out": 0, "both": 0}
    for b in graph:
        for a, c in itertools.combinations([x for x in graph if x != b], 2):
            if graph.has_edge(a, c) or graph.has_edge(c, a):
                continue
            paths = [(x, y) for x, y in ((a, c), (c, a)) if graph.has_edge(x, b) and graph.has_edge(b, y)]
            if not paths:
                continue
            x, y = paths[0]
            rec_in, rec_out = graph.has_edge(b, x), graph.has_edge(y, b)
            kind = {(False, False): "simple", (True, False): "recip_in", (False, True): "recip_out",
                    (True, True): "both"}[rec_in, rec_out]
            counts[kind] += 1
    return counts


@pytest.mark.parametrize("seed", range(6))
def test_measures_agree_with_networkx_and_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, respondents = 14, np.arange(9)                        # 9 respondents; 9-13 only named
    ties = {(int(s), int(t)) for s in respondents for t in rng.choice(n, size=rng.integers(0, 5), replace=False)
            if s != t}
    for s, t in list(ties):                                  # make some named respondents name back
        if t in respondents and rng.random() < 0.5:
            ties.add((t, s))
    edges = frame(sorted(ties))
    graph = nx.DiGraph()
    graph.add_nodes_from(np.union1d(respondents, edges["target"]).tolist())
    graph.add_edges_from(ties)
    m = network_measures(edges, respondents)
    census = nx.triadic_census(graph)
    counts = {k: m[f"brokerage_{k}"] for k in ("simple", "recip_in", "recip_out", "both")}
    assert counts == {"simple": census["021C"], "recip_in": census["111U"], "recip_out": census["111D"],
                      "both": census["201"]}
    assert counts == brute_force_brokerage(graph)
    assert m["arc_reciprocity"] == pytest.approx(nx.overall_reciprocity(graph))
    tied = {frozenset(e) for e in ties}
    assert m["dyad_reciprocity"] == pytest.approx(sum(graph.has_edge(v, u) for u, v in ties) / 2 / len(tied))
    assert m["components"] == nx.number_weakly_connected_components(graph)
    assert (m["actors"], m["ties"]) == (graph.number_of_nodes(), graph.number_of_edges())


def test_bad_edges_are_refused():
    with pytest.raises(ValueError, match="names themselves"):
        network_measures(frame([(1, 1)]), [1])
    with pytest.raises(ValueError, match="not a respondent"):
        network_measures(frame([(0, 1)]), [1])


def test_no_network_gives_zero_measures_under_the_documented_names():
    m = network_measures(frame([]), [])
    assert tuple(m) == GRAPH_MEASURES and MEASURES[:len(GRAPH_MEASURES)] == GRAPH_MEASURES
    assert m["actors"] == m["ties"] == m["components"] == 0 and m["isolated_share"] == 0.0


# -- sampling and naming on a small hand-built model --------------------------------------------------


def fake_model(n=400, l4l=None, scale=1.0, seed=0, week=200, params=None, ties=12):
    """A model-shaped namespace: the attributes emulate_survey reads (model v2), random ties."""
    rng = np.random.default_rng(seed)
    staff = SimpleNamespace(
        role=rng.integers(0, 4, n).astype(np.int8), team=np.arange(n) // 20,
        l4l=np.asarray(l4l if l4l is not None else rng.choice([NONE, IN_PROGRESS, COMPLETE, DROPPED], n),
                       dtype=np.int8),
        alt=np.zeros(n, dtype=np.int8), cohort=np.full(n, -1, dtype=np.int32), practising=np.zeros(n, bool),
        capability=rng.random(n), engagement=rng.random(n), kpo=np.arange(n) < 2)
    network = ImprovementNetwork(n)
    for i in range(n):
        network.add(np.full(ties, i), rng.choice(n, ties, replace=False), week=int(rng.integers(0, week)),
                    origin="work", weight=float(rng.uniform(0.2, 1)))
    return SimpleNamespace(staff=staff, network=network, week=week, scale=scale,
                           observation_rng=np.random.default_rng(seed + 1),
                           params={**default_params(), **(params or {})}, ceo_slot=0)


def test_invitations_are_the_l4l_participants_and_respondents_the_published_count():
    model = fake_model()
    participants = set(np.flatnonzero(np.isin(model.staff.l4l, [IN_PROGRESS, COMPLETE])))
    survey = emulate_survey(model, respondents=60)
    actors = survey["actors"]
    answered = set(actors.loc[actors["respondent"], "id"])
    assert survey["invited"] == len(participants)
    assert len(answered) == 60 == survey["measures"]["respondents"]
    assert answered <= participants
    assert set(actors.loc[actors["respondent"], "l4l"]) <= {"in_progress", "complete"}
    assert set(survey["edges"]["source"]) <= answered
    assert survey["measures"]["comparable"] is True


def test_a_short_list_is_surveyed_in_full():
    l4l = np.zeros(400, dtype=np.int8)
    l4l[[3, 50, 77]] = IN_PROGRESS, COMPLETE, COMPLETE
    l4l[[5, 6]] = DROPPED
    survey = emulate_survey(fake_model(l4l=l4l), respondents=60)
    assert survey["invited"] == 3
    assert set(survey["actors"].loc[survey["actors"]["respondent"], "id"]) == {3, 50, 77}


def test_names_are_own_contacts_within_two_to_ten_and_never_oneself():
    model = fake_model(params={"survey_share_naming_more": 0.5})
    survey = emulate_survey(model, respondents=150)
    edges = survey["edges"]
    assert (edges["source"] != edges["target"]).all()
    per_respondent = edges.groupby("source").size().reindex(
        survey["actors"].loc[survey["actors"]["respondent"], "id"], fill_value=0)
    assert per_respondent.between(2, 10).all()                   # everyone has 12 contacts
    assert (per_respondent > 5).any() and (per_respondent <= 5).any()
    net = model.network
    assert set(zip(edges["source"], edges["target"])) <= set(zip(net.source, net.target))   # own out-ties
    assert not edges.duplicated(["source", "target"]).any()


def test_few_contacts_limit_the_names():
    model = fake_model(n=50, ties=1, l4l=np.full(50, COMPLETE))
    survey = emulate_survey(model, respondents=50)
    assert (survey["edges"].groupby("source").size() == 1).all()


def test_the_share_naming_more_than_five_follows_its_parameter():
    model = fake_model(n=2000, l4l=np.full(2000, COMPLETE), params={"survey_share_naming_more": 0.2})
    named = emulate_survey(model, respondents=2000)["edges"].groupby("source").size()
    assert named.between(2, 10).all()
    assert (named > 5).mean() == pytest.approx(0.2, abs=0.03)
    usual = named[named <= 5].value_counts(normalize=True).sort_index()
    assert usual.to_numpy() == pytest.approx([0.25] * 4, abs=0.04)       # uniform on 2..5


def test_recent_strong_ties_are_named_not_capable_contacts():
    n, week = 300, 300
    model = fake_model(n=n, l4l=np.full(n, COMPLETE), week=week, ties=0,
                       params={"survey_recency_weeks": 26, "survey_share_naming_more": 0.0})
    net, rng = model.network, np.random.default_rng(5)
    for i in range(n):
        contacts = rng.choice(np.delete(np.arange(n), i), 10, replace=False)
        net.add(np.full(5, i), contacts[:5], week=week - 104, origin="cohort")   # idle for two years
        net.add(np.full(5, i), contacts[5:], week=week - 2, origin="work")       # used last fortnight
    model.staff.capability[:] = 0.0
    old = net.origin == 2
    model.staff.capability[net.target[old]] = 1.0      # the idle contacts are the capable ones
    edges = emulate_survey(model, respondents=n)["edges"]
    assert (edges["origin"] == "work").mean() > 0.95         # salience e^-4 against e^-0.08: about 2%
    assert set(edges.loc[edges["origin"] == "work", "weeks_since_active"]) == {2}


def test_sharp_recall_names_the_most_salient_ties_first():
    """At recall sharpness 10 a tie three times as salient is 3**10 times as likely to come to mind: each
    respondent names their three strong ties before any weak one; in proportion to salience (1) they do not."""
    def strong_named(sharpness):
        n, week = 300, 300
        model = fake_model(n=n, l4l=np.full(n, COMPLETE), week=week, ties=0,
                           params={"survey_share_naming_more": 0.0, "survey_recall_sharpness": sharpness})
        net, rng = model.network, np.random.default_rng(6)
        for i in range(n):
            contacts = rng.choice(np.delete(np.arange(n), i), 10, replace=False)
            net.add(np.full(3, i), contacts[:3], week=week - 1, origin="cohort", weight=3.0)
            net.add(np.full(7, i), contacts[3:], week=week - 1, origin="work", weight=1.0)
        edges = emulate_survey(model, respondents=n)["edges"]
        per = edges.groupby("source").agg(named=("origin", "size"), strong=("origin", lambda o: (o == "cohort").sum()))
        return (per["strong"] == per["named"].clip(upper=3)).mean()
    assert strong_named(10.0) > 0.98
    assert strong_named(1.0) < 0.6


def test_respondents_who_name_each_other_make_reciprocated_ties():
    model = fake_model(n=6, ties=0, l4l=np.full(6, COMPLETE))
    model.network.add([0, 1, 2, 3], [1, 0, 3, 4], week=190, origin="cohort")
    survey = emulate_survey(model, respondents=6)
    edges = survey["edges"].set_index(["source", "target"])
    assert edges.loc[(0, 1), "reciprocated"] and edges.loc[(1, 0), "reciprocated"]
    assert not edges.loc[(2, 3), "reciprocated"] and not edges.loc[(3, 4), "reciprocated"]
    assert survey["measures"]["dyad_reciprocity"] == pytest.approx(1 / 3)


def test_actors_carry_role_status_and_whether_they_answered():
    model = fake_model()
    survey = emulate_survey(model, respondents=40)
    actors, edges = survey["actors"], survey["edges"]
    assert list(actors.columns) == list(ACTOR_COLUMNS) and list(edges.columns) == list(EDGE_COLUMNS)
    assert set(actors["id"]) == set(edges["target"]) | set(actors.loc[actors["respondent"], "id"])
    slots = actors["id"].to_numpy()
    assert (actors["role"] == np.array(["doctor", "nurse_ahp", "manager", "support"])[model.staff.role[slots]]).all()
    assert (actors["l4l"] == np.array(["none", "in_progress", "complete", "dropped"])[model.staff.l4l[slots]]).all()
    assert (~actors["respondent"]).any()                          # people who did not answer were named
    assert survey["measures"]["actors"] == len(actors)
    assert tuple(k for k in survey["measures"] if k != "comparable") == MEASURES


def test_who_was_named_is_counted_from_the_named_peoples_status():
    # 0 and 1 answer; 0 names participant 1 and untrained 2; 1 names KPO member 3 and participant 0
    model = fake_model(n=6, ties=0, l4l=np.array([COMPLETE, IN_PROGRESS, NONE, NONE, DROPPED, NONE]))
    model.staff.kpo = np.array([False, False, False, True, False, False])
    model.network.add([0, 0, 1, 1], [1, 2, 3, 0], week=190, origin="cohort")
    m = emulate_survey(model, respondents=6)["measures"]
    assert m["respondents"] == 2 and m["ties"] == 4
    assert m["named_respondent_share"] == pytest.approx(2 / 4)
    assert m["named_participant_share"] == pytest.approx(2 / 4)
    assert m["named_kpo_share"] == pytest.approx(1 / 4)


def test_same_seed_same_survey():
    one, two = emulate_survey(fake_model(seed=3), 50), emulate_survey(fake_model(seed=3), 50)
    pd.testing.assert_frame_equal(one["edges"], two["edges"])
    assert one["measures"] == two["measures"]


def test_below_full_scale_the_survey_is_marked_not_comparable_and_sized_to_the_scale():
    survey = emulate_survey(fake_model(scale=0.1), respondents=94)
    assert survey["measures"]["comparable"] is False
    assert survey["measures"]["respondents"] == 9


def test_files_round_trip_and_trust_names_are_checked(tmp_path):
    survey = emulate_survey(fake_model(), respondents=30)
    write_survey(tmp_path, "SASH", survey)
    edges, actors = read_survey(tmp_path, "SASH")
    measures = survey["measures"]
    assert network_measures(edges, actors.loc[actors["respondent"], "id"]) == {k: measures[k] for k in GRAPH_MEASURES}
    named = actors.set_index("id").loc[edges["target"]]   # the files carry who was named, so the shares too
    assert named["l4l"].isin(["in_progress", "complete"]).mean() == pytest.approx(measures["named_participant_share"])
    assert named["kpo"].mean() == pytest.approx(measures["named_kpo_share"])
    with pytest.raises(ValueError, match="cannot name a survey file"):
        survey_files(tmp_path, "../SASH")


def test_the_figure_draws_every_trust_from_a_run_folder(tmp_path):
    from sim.survey_figure import plot_survey_networks

    for trust, scale in (("SASH", 1.0), ("BHRUT", 0.5)):
        write_survey(tmp_path, trust, emulate_survey(fake_model(n=200, scale=scale), respondents=30))
    plot_survey_networks(tmp_path, ["SASH", "BHRUT"], tmp_path / "survey_networks.png")
    assert (tmp_path / "survey_networks.png").stat().st_size > 10_000


# -- calibration reads network targets only from comparable surveys -----------------------------------


def summary(survey: dict, scale=1.0) -> dict:
    return {"scale": scale, "survey": {"dyad_reciprocity": 0.3, "brokerage_simple_share": 0.5,
                                       "isolated_share": 0.2, **survey}}


def test_calibration_uses_network_targets_only_from_comparable_surveys():
    targets = load_targets()
    survey_ids = [t.id for t in targets.targets if t.statistic.startswith("survey.")]
    assert survey_ids
    trusts = ("SASH", "LTHT", "UHCW", "SATH", "BHRUT")
    only_survey = targets.model_copy(update={"targets": [t for t in targets.targets if t.id in survey_ids]})
    full = simulated_statistics({t: summary({"comparable": True}) for t in trusts}, only_survey)
    assert all(np.isfinite(v) for v in full.values()) and set(full) == set(survey_ids)
    one_small = {t: summary({"comparable": t != "UHCW"}) for t in trusts}
    assert all(np.isnan(v) for v in simulated_statistics(one_small, only_survey).values())
    # a summary without the flag (written before it existed) is judged by its scale
    assert all(np.isnan(v) for v in simulated_statistics({t: summary({}, scale=0.25) for t in trusts},
                                                         only_survey).values())
    assert set(targets.for_scale(0.1).observed()) == set(targets.observed()) - set(survey_ids)
    assert targets.for_scale(1.0) == targets
