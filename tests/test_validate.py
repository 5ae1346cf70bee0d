"""orgsim validate: the claims file, the paired statistics and their intervals, and a tiny end-to-end check."""

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.cli import main as orgsim
from sim.errors import InputError
from sim.experiments.claims import SHIPPED_CLAIMS, Arm, EffectClaim, arms, load_claims
from sim.experiments.validate import bootstrap, evaluate, statistic
from sim.params import PARAMETERS, default_params
from sim.scenario import load_scenario

STATUSES = {"pass", "fail", "not available"}
SHIPPED_NAMES = {"sash_needs_cultural_work", "sath_stable_ceo", "bhrut_relational_regulator", "bhrut_relational_style",
                 "sath_culture_first",
                 "bhrut_culture_first", "sath_l4l_pace_less_than_culture", "value_stream_choices",
                 "network_share_of_sash_sath_gap"}


def shipped_data() -> dict:
    return yaml.safe_load(SHIPPED_CLAIMS.read_text())


def claims_today(directory, data=None):
    """The shipped claims with the relational switch-off reduced to the parameters that exist today."""
    data = data or shipped_data()
    for claim in data["claims"]:
        if claim["kind"] == "gap_share":
            claim["switched_off"] = {name: value for name, value in claim["switched_off"].items() if name in PARAMETERS}
    path = directory / "claims.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_claims(directory, *claims) -> str:
    path = directory / "bad_claims.yaml"
    path.write_text(yaml.safe_dump({"claims": list(claims)}, sort_keys=False))
    return str(path)


EFFECT = {"name": "stable", "kind": "effect", "evidence": "1.2", "base": "SATH",
          "variant": {"scenario": "sath_stable_ceo"}, "outcome": "quality_final", "expected": "higher"}


def refused(directory, *claims) -> str:
    path = write_claims(directory, *claims)
    with pytest.raises(InputError) as error:
        load_claims(path)
    assert path in str(error.value)
    return str(error.value)


# -- the claims file -------------------------------------------------------------------------------
def test_shipped_claims_file_is_valid_once_its_parameters_exist():
    missing = sorted(name for claim in shipped_data()["claims"] if claim["kind"] == "gap_share"
                     for name in claim["switched_off"] if name not in PARAMETERS)
    if missing:  # the model v2 parameters are not there yet: the error names them, the file and the claim
        with pytest.raises(InputError) as error:
            load_claims()
        message = str(error.value)
        assert str(SHIPPED_CLAIMS) in message and "network_share_of_sash_sath_gap" in message
        assert "switched_off" in message and missing[0] in message
    else:
        assert {claim.name for claim in load_claims().claims} == SHIPPED_NAMES


def test_claims_with_todays_parameters_load(tmp_path):
    claims = load_claims(claims_today(tmp_path)).claims
    assert {claim.name for claim in claims} == SHIPPED_NAMES
    gap = next(claim for claim in claims if claim.kind == "gap_share")
    assert arms(gap)["high_off"] == Arm.of("SASH", gap.switched_off)
    pattern = next(claim for claim in claims if claim.kind == "pattern")
    assert set(arms(pattern)) == {"SASH", "LTHT", "UHCW", "SATH", "BHRUT"}


def test_a_variant_without_scenario_is_its_base_with_parameters(tmp_path):
    claim = {**EFFECT, "variant": {"params": {"one_way_efficiency": 1.0}}}
    loaded = load_claims(write_claims(tmp_path, claim)).claims[0]
    assert arms(loaded)["variant"] == Arm.of("SATH", {"one_way_efficiency": 1.0})


@pytest.mark.parametrize("change, expected", [
    ({"kind": "wish"}, "'kind' must be one of"),
    ({"expected": "better"}, "field 'expected'"),
    ({"colour": "red"}, "field 'colour': unknown field"),
    ({"variant": {}}, "give a scenario, a params mapping, or both"),
    ({"outcome": "cqc_latest"}, "is a rating (text)"),
    ({"level": 1.5}, "field 'level'"),
    ({"name": "a/b"}, "field 'name'"),
])
def test_schema_errors_name_the_claim_and_field(tmp_path, change, expected):
    message = refused(tmp_path, {**EFFECT, **change})
    assert "claims[0]" in message and expected in message


def test_missing_kind_and_missing_field_are_named(tmp_path):
    assert "missing 'kind'" in refused(tmp_path, {key: value for key, value in EFFECT.items() if key != "kind"})
    message = refused(tmp_path, {key: value for key, value in EFFECT.items() if key != "expected"})
    assert "claims[0] (stable)" in message and "field 'expected'" in message


def test_unknown_scenario_and_parameter_are_named(tmp_path):
    message = refused(tmp_path, {**EFFECT, "variant": {"scenario": "no_such_whatif"}})
    assert "claims[0] (stable)" in message and "variant.scenario" in message and "no_such_whatif" in message
    message = refused(tmp_path, {**EFFECT, "variant": {"params": {"no_such_parameter": 1}}})
    assert "variant.params" in message and "no_such_parameter" in message and "allowed" in message
    message = refused(tmp_path, {**EFFECT, "variant": {"params": {"one_way_efficiency": 7}}})
    assert "outside its allowed range" in message


def test_duplicate_names_and_empty_file_are_refused(tmp_path):
    assert "repeated: stable" in refused(tmp_path, EFFECT, EFFECT)
    assert "field 'claims'" in refused(tmp_path)
    path = tmp_path / "broken.yaml"
    path.write_text("claims: [\n")
    with pytest.raises(InputError, match="YAML syntax error"):
        load_claims(path)
    with pytest.raises(InputError, match="claims file not found"):
        load_claims(tmp_path / "absent.yaml")


def test_cli_refuses_a_bad_claims_file_before_running(tmp_path):
    path = write_claims(tmp_path, {**EFFECT, "expected": "better"})
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = orgsim(["validate", "--quick", "--claims", path, "--out", str(tmp_path / "out")])
    assert code == 2 and stderr.getvalue().startswith("orgsim: error: ") and "Traceback" not in stderr.getvalue()
    assert not (tmp_path / "out").exists()


def test_sets_without_posterior_is_refused(tmp_path):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = orgsim(["validate", "--sets", "3", "--claims", str(claims_today(tmp_path))])
    assert code == 2 and "--sets" in stderr.getvalue()


def test_whatifs_of_the_pace_against_culture_claim():
    sath, sash = load_scenario("SATH"), load_scenario("SASH")
    assert load_scenario("sath_sash_culture").culture == sash.culture
    assert load_scenario("sath_double_l4l").programme.l4l_cohorts_per_year == 2 * sath.programme.l4l_cohorts_per_year


# -- statistics on constructed tables --------------------------------------------------------------
def constructed_runs(arm_values: dict[int, np.ndarray], **columns) -> pd.DataFrame:
    """Runs of a (sets x replicates) design: ``arm_values[arm][set, replicate]`` as ``quality_final``."""
    rows = []
    for arm, matrix in arm_values.items():
        for (param_set, replicate), value in np.ndenumerate(matrix):
            rows.append({"arm": arm, "param_set": param_set, "replicate": replicate, "quality_final": value,
                         **{name: column[arm][param_set, replicate] for name, column in columns.items()}})
    return pd.DataFrame(rows)


def one_claim(tmp_path, claim):
    claims = load_claims(write_claims(tmp_path, claim)).claims
    return claims, list(dict.fromkeys(arm for c in claims for arm in arms(c).values()))


def test_paired_difference_and_its_interval(tmp_path):
    rng = np.random.default_rng(3)
    base = rng.normal(0, 5, size=(1, 400))             # large spread shared by both arms (common random numbers)
    difference = rng.normal(0.3, 1.0, size=(1, 400))
    claims, arm_list = one_claim(tmp_path, EFFECT)
    table, pairs = evaluate(claims, arm_list, constructed_runs({0: base, 1: base + difference}), np.ones(1), 400,
                            resamples=4000, seed=1)
    row = table.iloc[0]
    assert row["effect"] == pytest.approx(difference.mean())
    half_width = 1.645 * difference.std() / np.sqrt(400)  # the normal-theory 90% interval of a mean
    assert row["interval_low"] == pytest.approx(difference.mean() - half_width, abs=0.2 * half_width)
    assert row["interval_high"] == pytest.approx(difference.mean() + half_width, abs=0.2 * half_width)
    assert row["pairs"] == 400 and row["status"] == "pass"
    assert len(pairs) == 800 and set(pairs["role"]) == {"base", "variant"}


def test_a_constant_difference_has_no_width_and_the_direction_decides(tmp_path):
    base = np.arange(12.0).reshape(3, 4)
    claims, arm_list = one_claim(tmp_path, {**EFFECT, "expected": "lower"})
    table, _ = evaluate(claims, arm_list, constructed_runs({0: base, 1: base + 0.5}), np.ones(3), 4, seed=2)
    assert table.iloc[0][["effect", "interval_low", "interval_high"]].tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert table.iloc[0]["status"] == "fail"   # higher, not lower


def test_parameter_set_weights_weigh_the_pairs():
    values = {"base": np.zeros((2, 3)), "variant": np.array([[1.0] * 3, [3.0] * 3])}
    effect = statistic(EffectClaim.model_construct(kind="effect"))
    estimate, low, high, complete = bootstrap(values, np.array([0.75, 0.25]), effect, 0.9, 2000, 0)
    assert estimate == pytest.approx(1.5) and complete == 6
    assert 1.0 <= low < 1.5 < high <= 3.0          # resampling the sets by weight spreads it between 1 and 3


def test_incomplete_pairs_are_left_out():
    values = {"base": np.array([[0.0, 0.0, np.nan]]), "variant": np.array([[1.0, 2.0, 100.0]])}
    effect = statistic(EffectClaim.model_construct(kind="effect"))
    estimate, low, high, complete = bootstrap(values, np.ones(1), effect, 0.9, 500, 0)
    assert estimate == pytest.approx(1.5) and complete == 2 and 1.0 <= low <= high <= 2.0


def test_smaller_effect_gap_share_and_pattern(tmp_path):
    ones = np.ones((2, 5))
    claims, arm_list = one_claim(tmp_path, {
        "name": "pace", "kind": "smaller_effect", "evidence": "1.4", "base": "SATH", "expected": "higher",
        "variant": {"scenario": "sath_double_l4l"}, "reference": {"scenario": "sath_sash_culture"}})
    runs = constructed_runs({0: 0 * ones, 1: -0.2 * ones, 2: 1.0 * ones})
    row = evaluate(claims, arm_list, runs, np.ones(2), 5)[0].iloc[0]
    assert row["effect"] == pytest.approx(0.2 - 1.0) and row["status"] == "pass"

    claims, arm_list = one_claim(tmp_path, {
        "name": "gap", "kind": "gap_share", "evidence": "1.4", "high": "SASH", "low": "SATH",
        "switched_off": {"peer_influence_rate": 0.0}, "threshold": 0.25})
    # arms in order: SASH, SATH, SASH off, SATH off; gap 2 with the mechanisms, 1.4 without
    runs = constructed_runs({0: 3 * ones, 1: 1 * ones, 2: 2.4 * ones, 3: 1 * ones})
    row = evaluate(claims, arm_list, runs, np.ones(2), 5)[0].iloc[0]
    assert row["effect"] == pytest.approx(0.3) and row["status"] == "pass"
    runs = constructed_runs({0: 1 * ones, 1: 1 * ones, 2: 1 * ones, 3: 1 * ones})
    row = evaluate(claims, arm_list, runs, np.ones(2), 5)[0].iloc[0]
    assert row["status"] == "fail" and "not above" in row["note"]

    claims, arm_list = one_claim(tmp_path, {
        "name": "choices", "kind": "pattern", "evidence": "1.5", "key": "value_stream_selection",
        "expected_values": {"SASH": "top_down", "SATH": "bottom_up"}, "threshold": 0.8})
    choice = {0: np.array([["top_down"] * 4 + ["bottom_up"]]), 1: np.array([["bottom_up"] * 3 + ["top_down"] * 2])}
    runs = constructed_runs({0: np.zeros((1, 5)), 1: np.zeros((1, 5))}, value_stream_selection=choice)
    table = evaluate(claims, arm_list, runs, np.ones(1), 5)[0]
    assert table["part"].tolist() == ["SASH", "SATH"]
    assert table["effect"].tolist() == pytest.approx([0.8, 0.6]) and table["status"].tolist() == ["pass", "fail"]
    table = evaluate(claims, arm_list, runs.drop(columns="value_stream_selection"), np.ones(1), 5)[0]
    assert table["status"].tolist() == ["not available"] * 2


# -- end to end ------------------------------------------------------------------------------------
def test_validate_quick_end_to_end(tmp_path):
    posterior = pd.DataFrame([default_params()] * 2).assign(weight=[0.6, 0.4])
    name = next(iter(PARAMETERS))
    posterior.loc[1, name] = PARAMETERS[name].low
    posterior.to_csv(tmp_path / "posterior.csv", index=False)
    out = tmp_path / "validate"
    command = ["validate", "--quick", "--claims", str(claims_today(tmp_path)), "--posterior", str(tmp_path / "posterior.csv"),
               "--sets", "2", "--replicates", "2", "--scale", "0.05", "--end", "2016-12-31", "--out", str(out),
               "--no-progress"]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert orgsim(command) == 0
    table = pd.read_csv(out / "validate.csv", keep_default_na=False)
    assert set(table["claim"]) == SHIPPED_NAMES
    assert set(table["status"]) <= STATUSES
    assert (table.loc[table["status"] != "not available", "pairs"].astype(int) == 4).all()
    pattern = table[table["claim"] == "value_stream_choices"]
    assert pattern["part"].tolist() == ["SASH", "LTHT", "UHCW", "SATH", "BHRUT"]
    for claim in SHIPPED_NAMES:
        assert claim in stdout.getvalue()
    for name in ("manifest.json", "validate.md", "validate.png", "pairs.csv", "validate.json"):
        assert (out / name).stat().st_size > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs"] == 15 * 2 * 2 and manifest["complete"]
    with contextlib.redirect_stdout(io.StringIO()):   # a second call reuses every run and gives the same table
        assert orgsim(command) == 0
    assert pd.read_csv(out / "validate.csv", keep_default_na=False).equals(table)
