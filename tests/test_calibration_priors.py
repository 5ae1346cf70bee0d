"""Priors file (calibration/priors.yaml): free parameters, ranges, validation, particle splitting."""

import pytest
import yaml

from sim.calibration.priors import DEFAULT_PRIORS, load_priors, split_particle
from sim.errors import InputError
from sim.params import PARAMETERS, default_params


def write(tmp_path, data) -> str:
    path = tmp_path / "priors.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


SHIPPED_PRIORS = [DEFAULT_PRIORS, *sorted((DEFAULT_PRIORS.parent / "next").glob("priors*.yaml"))]


@pytest.mark.parametrize("path", SHIPPED_PRIORS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_shipped_priors_lie_inside_the_allowed_ranges_and_say_why(path):
    priors = load_priors(path)
    for prior in priors.priors:
        assert prior.why, prior.name
        if prior.trust is None:
            spec = PARAMETERS[prior.name]
            assert spec.low <= prior.low < prior.high <= spec.high
    per_trust = [p for p in priors.priors if p.trust]
    # two L4L paces per trust (both censuses) and four unpublished RPIW paces: keep them few
    assert len(per_trust) <= 14, "keep per-trust free parameters few"
    assert "SATH.programme.rpiws_per_year" not in priors.names  # SATH's pace (24/yr) is published


def test_stage_2_of_r4_frees_model_v2_3s_parameters_on_r3_full_s_priors():
    r3 = load_priors(DEFAULT_PRIORS.parent / "next" / "priors_truncated.yaml")
    r4 = load_priors(DEFAULT_PRIORS.parent / "next" / "priors_r4.yaml")
    assert set(r4.names) - set(r3.names) == {"quality_start_lag", "practice_isolation_abandon"}
    assert {(p.name, p.low, p.high) for p in r3.priors} <= {(p.name, p.low, p.high) for p in r4.priors}


def test_leaving_out_a_trust_removes_its_per_trust_priors():
    priors = load_priors(DEFAULT_PRIORS).for_trusts(["SASH", "LTHT", "UHCW", "SATH"])
    assert not any(name.startswith("BHRUT.") for name in priors.names)
    assert len(priors.shared()) == len(load_priors(DEFAULT_PRIORS).shared())


def test_split_particle_gives_parameters_and_scenario_overrides():
    particle = {"rpiw_effect": 0.5, "SASH.programme.l4l_cohorts_per_year": 3.0,
                "BHRUT.programme.rpiws_per_year": 2.0}
    params, overrides = split_particle(particle, ["SASH", "LTHT"])
    assert params["rpiw_effect"] == 0.5
    assert params["dropout_per_module"] == default_params()["dropout_per_module"]
    assert overrides == {"SASH": {"programme": {"l4l_cohorts_per_year": 3.0}}, "LTHT": {}}


@pytest.mark.parametrize("content, expected", [
    ("shared: {rpiw_effect: [0.3", "YAML syntax error"),
    ({"shared": {"rpiw_effect": {"low": 0.1, "high": 0.9}}}, "outside the parameter's allowed range"),
    ({"shared": {"no_such_parameter": [0, 1]}}, "field 'shared.no_such_parameter': unknown parameter"),
    ({"shared": {"rpiw_effect": [0.9, 0.4]}}, "must be below high"),
    ({"shared": {"rpiw_effect": {"low": "a", "high": 0.9}}}, "field 'shared.rpiw_effect.low'"),
    ({"shared": {"rpiw_effect": {"low": 0.4, "high": 0.9, "shape": "normal"}}}, "unknown key(s) shape"),
    ({"per_trust": {"programme.l4l_cohorts_per_year": {"XYZ": [1, 2]}}},
     "field 'per_trust.programme.l4l_cohorts_per_year.XYZ': unknown trust"),
    ({"per_trust": {"programme.l4l_cohorts_per_year": {"SASH": [-5, 2]}}}, "does not give a valid scenario"),
    ({"per_trust": {"programme.no_such_field": {"SASH": [1, 2]}}}, "does not give a valid scenario"),
    ({"shared": {}}, "no free parameter"),
    ({"free": {}}, "'shared' and optionally 'per_trust'"),
])
def test_malformed_priors_name_file_and_field(tmp_path, content, expected):
    path = write(tmp_path, content)
    with pytest.raises(InputError) as error:
        load_priors(path)
    assert path in str(error.value)
    assert expected in str(error.value)


SECOND_PACE = "programme.changes.2019-01-01.l4l_cohorts_per_year"


def test_a_dated_change_is_addressed_by_its_date():
    """TRUST.programme.changes.DATE.field sets one field of the change with that date, and only that."""
    from sim.scenario import load_scenario

    params, overrides = split_particle({f"SASH.{SECOND_PACE}": 5.0, "BHRUT.programme.changes.2018-07-01."
                                        "l4l_cohorts_per_year": 4.0}, ["SASH", "BHRUT"])
    sash, bhrut = (load_scenario(t, overrides=overrides[t]) for t in ("SASH", "BHRUT"))
    assert [(str(c.date), c.l4l_cohorts_per_year) for c in sash.programme.changes] == [("2019-01-01", 5.0)]
    july_2018 = bhrut.programme.changes[0]
    assert (july_2018.l4l_cohorts_per_year, july_2018.rpiws_per_year, july_2018.kpo_staff) == (4.0, 0, 3)
    assert load_scenario("SASH").programme.changes[0].l4l_cohorts_per_year is None   # unset: the pace goes on


def test_a_change_date_that_no_change_has_is_refused(tmp_path):
    path = write(tmp_path, {"per_trust": {"programme.changes.2019-02-01.l4l_cohorts_per_year": {"SASH": [1, 2]}}})
    with pytest.raises(InputError, match="no entry of 'changes' is dated 2019-02-01; dated entries: 2019-01-01"):
        load_priors(path)


def test_the_second_l4l_pace_changes_the_programme_from_its_date_only():
    """Same seed: the same participants at the December 2018 census; fewer by March 2021 without new cohorts."""
    from sim.runner import simulate
    from sim.scenario import load_scenario

    def participants(pace_from_2019):
        overrides = {"programme": {"changes": {"2019-01-01": {"l4l_cohorts_per_year": pace_from_2019}}}}
        summary = simulate(load_scenario("SASH", overrides=overrides), default_params(), seed=3, scale=0.1).summary
        return summary["l4l_participants_2018_12"], summary["l4l_complete_2021_03"] + summary["l4l_in_progress_2021_03"]

    same_pace, none_from_2019, more_from_2019 = participants(2.0), participants(0.0), participants(8.0)
    assert same_pace[0] == none_from_2019[0] == more_from_2019[0]
    assert none_from_2019[1] < same_pace[1] < more_from_2019[1]
