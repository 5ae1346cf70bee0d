"""Readiness for leaders: the questionnaire's mapping and its errors, outputs relative to the programme start for an
organisation that is not one of the five, a lever of zero size, and a report end to end at reduced size."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.cli import _print_summary, main
from sim.errors import InputError
from sim.params import default_params
from sim.readiness import analysis
from sim.readiness.dimensions import model_reading, readiness_dimensions
from sim.readiness.mapping import ANCHOR, LEVERS, RISKS, build_scenario, scenario_dict
from sim.readiness.nearest import distances
from sim.readiness.network import network_fields, survey_measures
from sim.readiness.profile import ask, load_profile, template, validate_profile
from sim.runner import HORIZON_MONTHS, simulate
from sim.scenario import load_scenario

ANSWERS = {"organisation": "Test trust", "staff": 3000, "programme_start": "2027-04-01", "ceo_started": "2026-10-01",
           "improvement_team": 6}


def profile_of(**changes):
    return validate_profile({**ANSWERS, **changes}, "test profile")


def write_profile(path, **changes):
    path.write_text(yaml.safe_dump({**ANSWERS, **changes}))
    return path


def lever(name):
    return next(lever for lever in LEVERS + RISKS if lever.name == name)


# -- the questionnaire's mapping ------------------------------------------------------------------------
def test_dates_move_onto_the_models_calendar_and_a_recent_ceo_is_a_change_during_the_history():
    scenario = build_scenario(profile_of(ceo_change={"date": "2029-04-01", "kind": "interim"}))
    assert scenario.programme.start == ANCHOR and scenario.start == dt.date(2013, 7, 1)
    assert scenario.end == dt.date(2020, 7, 1)                                     # five years after the start
    assert scenario.inspections == [dt.date(2015 + k, 7, 1) for k in range(6)]     # the start and each anniversary
    arrived, interim, successor = scenario.leadership.changes                     # 6 months before: a change
    assert (arrived.kind, arrived.date) == ("permanent", dt.date(2015, 1, 1))
    assert (interim.kind, interim.date) == ("interim", dt.date(2017, 7, 1))
    assert (successor.kind, successor.date) == ("permanent", dt.date(2018, 7, 1))
    assert scenario.leadership.ceo_in_post_since == dt.date(2008, 7, 1)           # a settled predecessor
    settled = build_scenario(profile_of(ceo_started="2020-04-01"))
    assert settled.leadership.ceo_in_post_since == dt.date(2008, 7, 1) and not settled.leadership.changes


def test_culture_answers_set_values_work_and_the_three_levers():
    scenario = build_scenario(profile_of(values_work_years=3, values_work_continues=True,
                                         culture_in_place=["shared_values", "reflective_routines"],
                                         distributed_leadership="partly"))
    culture = scenario.culture
    assert culture.values_work_years_before == 1                                  # 3 years: 1 before the run
    assert (culture.values_work_during.start, culture.values_work_during.end) == (dt.date(2013, 7, 1), scenario.end)
    assert culture.reflective_routines and not culture.values_based_recruitment
    assert culture.distributed_leadership == 0.5
    halved = build_scenario(profile_of(values_work_years=3)).culture              # no shared values: counted half
    assert halved.values_work_years_before == 0 and halved.values_work_during.start == dt.date(2014, 1, 1)
    assert halved.values_work_during.end == ANCHOR                                 # stops at the start
    assert build_scenario(profile_of()).culture.distributed_leadership == 0.2


def test_regulation_and_programme_answers():
    scenario = build_scenario(profile_of(regulatory_position="special_measures_quality", regulatory_until="2029-04-01",
                                         regulator_relationship="relational", rpiws_per_year=24, value_streams="top_down"))
    episode, = scenario.regulation.episodes
    assert (episode.kind, episode.start, episode.end) == ("special_measures_quality", scenario.start, dt.date(2017, 7, 1))
    assert scenario.regulation.style == "relational"
    assert scenario.programme.rpiws_per_year == 24 and scenario.programme.kpo_staff == 6
    assert scenario.programme.value_stream_selection == "top_down"
    assert build_scenario(profile_of()).programme.value_stream_selection == "auto"


def test_a_network_survey_sets_team_and_cross_team_ties(tmp_path):
    # two separate groups of respondents, each naming 3 people within it: nobody outside the largest group is
    # cut off from it except the other group (half the respondents)
    rows = [(f"a{i}", f"a{(i + k) % 6}") for i in range(6) for k in (1, 2, 3)]
    rows += [(f"b{i}", f"b{(i + k) % 6}") for i in range(6) for k in (1, 2, 3)]
    path = tmp_path / "net.csv"
    pd.DataFrame(rows, columns=["source", "target"]).to_csv(path, index=False)
    measures = survey_measures(path)
    assert measures["respondents"] == 12 and measures["names_per_respondent"] == 3
    assert measures["isolated_share"] == pytest.approx(0.5)
    assert network_fields(measures) == {"team_ties": 3, "cross_team_ties": 0.625}   # (1 - 0.5) / (1 - 0.2)
    path.write_text("source,target\na,a\n" + "".join(f"{s},{t}\n" for s, t in rows))
    with pytest.raises(InputError, match="name the respondent themselves"):
        survey_measures(path)


@pytest.mark.parametrize("changes, question", [
    ({"staff": "lots"}, "question 'staff' (How many staff work there (headcount)?)"),
    ({"distributed_leadership": "maybe"}, "question 'distributed_leadership'"),
    ({"ceo_started": "2028-01"}, "question 'ceo_started'"),
    ({"ceo_change": {"date": "2040-01", "kind": "interim"}}, "question 'ceo_change'"),
    ({"regulatory_until": "2028-01"}, "regulatory_since/regulatory_until: give them only with a regulatory_position"),
    ({"programme_start": "next spring"}, "question 'programme_start'"),
    ({"horizon_years": 10}, "allowed: 3, 4 or 5"),
])
def test_a_bad_answer_is_refused_naming_its_question(changes, question):
    with pytest.raises(InputError) as error:
        profile_of(**changes)
    assert str(error.value).startswith("test profile: ") and question in str(error.value)


def test_unknown_and_missing_questions_are_named():
    with pytest.raises(InputError, match="'headcount' is not a question of the profile"):
        profile_of(headcount=3)
    with pytest.raises(InputError, match=r"unanswered question\(s\) 'staff' \(How many staff"):
        validate_profile({k: v for k, v in ANSWERS.items() if k != "staff"}, "p.yaml")


def test_the_cli_refuses_a_bad_profile_with_exit_2_and_writes_nothing(tmp_path, capsys):
    profile = write_profile(tmp_path / "p.yaml", rpiws_per_year=-1)
    out = tmp_path / "report"
    assert main(["readiness", str(profile), "--posterior", "defaults", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("orgsim: error: ") and "question 'rpiws_per_year'" in err and "Traceback" not in err
    assert not out.exists()


def test_init_writes_a_template_that_reads_back_to_its_defaults_and_refuses_to_overwrite(tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    assert main(["readiness", "init", "--out", str(path)]) == 0      # stdin is not a terminal under pytest
    text = path.read_text()
    assert "# How many staff work there (headcount)?" in text and "#   allowed: none, partly or in_place" in text
    profile = load_profile(path)
    assert profile.staff == 5000 and profile.ceo_change is None and profile.culture_in_place == []
    assert main(["readiness", "init", "--out", str(path)]) == 2
    assert "the file exists" in capsys.readouterr().err


def test_the_terminal_questionnaire_asks_again_after_a_bad_answer():
    replies = iter(["Ward trust", "-5", "2500", "", "", "", "interim 2030-01", *[""] * 40])
    said = []
    answers = ask(input_fn=lambda prompt: next(replies), print_fn=said.append)
    assert answers["organisation"] == "Ward trust" and answers["staff"] == 2500
    assert any("not accepted" in line and "200-100000" in line for line in said)
    profile = validate_profile(answers, "asked")
    assert profile.ceo_change.kind == "interim" and profile.ceo_change.date == dt.date(2030, 1, 1)
    assert load_profile_text(template(answers)).organisation == "Ward trust"


def load_profile_text(text):
    from sim.readiness.profile import _DatesAsText

    return validate_profile(yaml.load(text, Loader=_DatesAsText), "template")  # noqa: S506 (a safe loader)


def test_readiness_dimensions_follow_the_answers():
    params = default_params()

    def scores(**changes):
        profile = profile_of(**changes)
        dimensions = readiness_dimensions(profile, model_reading(profile, build_scenario(profile), params))
        return {(d.instrument, d.name): d for d in dimensions}

    bare = scores()
    rich = scores(values_work_years=3, culture_in_place=["shared_values", "values_based_recruitment",
                                                         "reflective_routines"], distributed_leadership="in_place")
    for key in [("NHS IMPACT", "shared purpose and vision"), ("MUSIQ", "microsystem"), ("ORIC", "change commitment")]:
        assert rich[key].score > bare[key].score
    assert rich[("MUSIQ", "microsystem")].score == 100 and bare[("MUSIQ", "microsystem")].level == "weak"
    pressed = scores(regulatory_position="regulatory_action")
    assert pressed[("i-PARIHS", "outer context")].score == 0 and bare[("i-PARIHS", "outer context")].score == 100
    assert "staff engagement" not in bare[("ORIC", "change commitment")].parts
    assert "staff engagement" in scores(staff_engagement=7.0)[("ORIC", "change commitment")].parts


def test_a_trust_is_nearest_to_itself():
    table = distances(load_scenario("SATH"), default_params())
    assert table.loc[1, "organisation"] == "SATH" and table.loc[1, "distance"] == 0
    assert (np.diff(table["distance"].iloc[1:]) >= 0).all()


# -- outputs relative to the programme start -------------------------------------------------------------
def own_organisation(tmp_path):
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump({"name": "OWN", "staff": 2000, "start": "2024-07-01", "end": "2028-03-01",
                                    "leadership": {"ceo_in_post_since": "2020-01-01"},
                                    "programme": {"start": "2025-01-01", "kpo_staff": 4, "l4l_cohorts_per_year": 2,
                                                  "alt_places_per_year": 6, "rpiws_per_year": 6}}))
    return path


def test_an_organisation_that_is_not_one_of_the_five_gets_outputs_by_months_after_its_start(tmp_path, capsys):
    result = simulate(load_scenario(str(own_organisation(tmp_path))), default_params(), 3, scale=0.1)
    summary = result.summary
    assert summary["rpiws_2019_07"] == 0 and summary["programme_start"] == "2025-01-01"   # census dates: before it
    reached = [m for m in HORIZON_MONTHS if m <= 36]                                   # the run ends 2028-03
    participants = [summary[f"l4l_participants_m{m}"] for m in reached]
    assert participants[-1] > 0 and participants == sorted(participants)
    assert summary["rpiws_m36"] > summary["rpiws_m12"] > 0
    frame = result.timeseries
    at_12 = frame[pd.to_datetime(frame["date"]) <= "2026-01-01"].iloc[-1]
    assert summary["quality_m12"] == at_12["quality"] and summary["cqc_band_m12"] == at_12["cqc_band"]
    assert summary["quality_m48"] is None and summary["cqc_band_m48"] is None           # past the run's end
    _print_summary([result])
    printed = capsys.readouterr().out
    assert "months after the programme starts (2025-01-01)" in printed and "L4L participants" in printed
    assert "RPIWs@19" not in printed


def test_run_posterior_accepts_an_organisation_of_its_own_and_says_what_applies(tmp_path, capsys):
    posterior = tmp_path / "posterior.csv"
    pd.DataFrame([{**default_params(), "rpiw_effect": v, "SATH.programme.rpiws_per_year": 12, "weight": 1}
                  for v in (0.5, 0.8)]).to_csv(posterior, index=False)
    out = tmp_path / "ensemble"
    # no --end: one date cannot lie inside both runs (SATH ends in March 2021, this organisation in 2028)
    assert main(["run", str(own_organisation(tmp_path)), "SATH", "--posterior", str(posterior), "--scale", "0.05",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "OWN: not one of the five trusts, so only the posterior's shared parameters apply; the per-trust columns " \
           "(SATH.programme.rpiws_per_year) do not" in printed
    summary = json.loads((out / "ensemble_summary.json").read_text())
    assert set(summary["trusts"]) == {"SATH", "OWN"}
    own = summary["trusts"]["OWN"]
    assert own["statistics"]["l4l_participants_m12"]["median"] > 0
    assert set(own["cqc_band_after_start"]) == {"6", "12", "24", "36"}             # the runs end after 36 months
    runs = pd.read_parquet(next((out / "ensemble_runs" / "runs").glob("*.parquet")))
    sath = runs[runs["scenario"] == "SATH"]
    assert "months after the programme starts (2025-01-01)" in printed
    assert (runs.loc[runs["scenario"] != "SATH", "overrides"] == "{}").all()
    assert sath["overrides"].str.contains('"rpiws_per_year": 12.0').all()


# -- levers ----------------------------------------------------------------------------------------------
def test_a_lever_of_zero_size_has_exactly_zero_effect_and_ranks_as_such(tmp_path):
    profile = profile_of(rpiws_per_year=12)
    levers = [lever("more_l4l").resized(0), lever("slower_rpiws"), lever("top_down_value_streams")]
    arms, skipped = analysis.plan_arms(profile, tmp_path / "scenarios", levers, keep_in_place=True)
    assert not skipped and [a.name for a in arms] == ["base", "more_l4l", "slower_rpiws", "top_down_value_streams"]
    sets = pd.DataFrame([default_params()]).assign(weight=1.0)
    specs = analysis.arm_specs(arms, sets, 3, 11, 0.05, end=dt.date(2017, 1, 1))   # a short horizon: quick
    result = analysis.run_arms(specs, None, progress=False)
    effects = analysis.lever_effects(result.runs, arms, "rpiws_total").set_index("variant")
    zero = effects.loc["more_l4l"]
    assert zero["difference"] == 0 and zero["ci_low"] == 0 and zero["ci_high"] == 0 and not zero["clear"]
    assert effects.loc["slower_rpiws", "difference"] < 0                         # half the pace, fewer RPIWs
    assert list(effects["rank"]) == [1, 2, 3]
    assert effects.loc["more_l4l", "rank"] == 1 + (effects["gain"] > 0).sum()    # placed by its zero effect


def test_levers_already_in_place_are_not_run(tmp_path):
    profile = profile_of(culture_in_place=["reflective_routines"], value_streams="top_down")
    _, skipped = analysis.plan_arms(profile, tmp_path / "s", LEVERS)
    assert {lever.name for lever, _ in skipped} == {"reflective_routines", "top_down_value_streams"}


def test_culture_first_delays_the_programme_on_the_same_calendar():
    base = scenario_dict(profile_of())
    changes = lever("culture_first").changes(base, profile_of())
    assert changes["programme"]["start"] == "2017-07-01"
    assert changes["culture"]["values_work_during"] == {"start": "2015-07-01", "end": "2017-07-01"}
    assert "end" not in changes and "inspections" not in changes


# -- a report end to end ---------------------------------------------------------------------------------
def test_a_report_end_to_end_at_reduced_size(tmp_path, capsys):
    network = tmp_path / "network.csv"
    pd.DataFrame([(f"p{i}", f"p{(i + k) % 12}") for i in range(12) for k in (1, 3)],
                 columns=["source", "target"]).to_csv(network, index=False)
    profile = write_profile(tmp_path / "profile.yaml", network_survey="network.csv", staff_engagement=7.0,
                            horizon_years=3)
    posterior = tmp_path / "posterior.csv"
    pd.DataFrame([{**default_params(), "rpiw_effect": v, "weight": 1} for v in (0.5, 0.8)]).to_csv(posterior,
                                                                                                 index=False)
    from sim.readiness.report import Options, make_report

    out = tmp_path / "report"
    options = Options(posterior=str(posterior), sets=2, replicates=2, scale=0.05, workers=1, progress=True,
                      levers=(lever("slower_rpiws"), lever("distributed_leadership"), lever("ceo_change")))
    path = make_report(profile, out, options)   # its speed is measured in benchmarks/bench_readiness.py, not here
    printed = capsys.readouterr().out
    assert "16 runs = 2 parameter set(s) of posterior.csv (all, by their weights) x 2 replicate(s) x 4 arm(s)" \
        in printed and "which lever first" in printed
    page = path.read_text()
    for heading in ("Summary", "Readiness profile", "Your network", "The likely trajectory over 3 years",
                    "Which lever first", "What you do not control", "The nearest of the five trusts",
                    "The model&#x27;s limits, in plain words"):
        assert f"<h2>{heading}</h2>" in page
    assert page.count("src='data:image/png;base64,") == 6
    assert "ORIC" in page and "MUSIQ" in page and "NHS IMPACT" in page and "i-PARIHS" in page
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert all((out / f"{name}.png").stat().st_size < 200_000 for name in
               ("profile", "network", "trajectory", "contributions", "ratings", "levers"))
    effects = pd.read_csv(out / "effects.csv")
    assert list(effects["kind"]) == ["lever", "lever", "risk"] and (effects["pairs"] == 4).all()
    ratings = pd.read_csv(out / "ratings.csv")
    assert list(ratings["year"]) == [0, 1, 2, 3]
    assert np.allclose(ratings[["inadequate", "requires_improvement", "good", "outstanding"]].sum(axis=1), 1)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["network_survey"]["network_fields"] == {"team_ties": 2, "cross_team_ties": 1.25}
    assert load_scenario(str(out / "scenarios" / "lever_slower_rpiws.yaml")).programme.rpiws_per_year == 3


def test_the_five_trusts_surveys_are_read_from_a_full_scale_run_folder_only(tmp_path):
    from sim.readiness.network import read_reference_surveys

    measures = {"respondents": 50, "ties": 200, "arc_reciprocity": 0.1, "isolated_share": 0.3,
                "brokerage_simple_share": 0.5}
    (tmp_path / "summary.json").write_text(json.dumps({"SASH": {"survey": {**measures, "comparable": True}},
                                                       "SATH": {"survey": {**measures, "comparable": False}}}))
    surveys = read_reference_surveys(tmp_path)
    assert list(surveys) == ["SASH"] and surveys["SASH"]["names_per_respondent"] == 4
    (tmp_path / "summary.json").write_text(json.dumps({"SATH": {"survey": {**measures, "comparable": False}}}))
    with pytest.raises(InputError, match="no trust there has a comparable survey"):
        read_reference_surveys(tmp_path)
