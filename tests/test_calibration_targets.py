"""Calibration targets file and the one statistics function (sim/calibration/targets.py)."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from sim.calibration.priors import DEFAULT_PRIORS
from sim.calibration.provenance import file_sha256
from sim.calibration.targets import (DEFAULT_TARGETS, TRUST_NAMES, cross_trust_components, load_targets,
                                    simulated_statistics, statistics_over)
from sim.errors import InputError

PUBLISHED = Path(__file__).resolve().parents[1] / "docs" / "data" / "nhs_vmi_trusts.yaml"  # Burgess et al. 2022


def summary(**changes) -> dict:
    """A hand-made summary of one trust, in the shape of RunResult.summary."""
    base = {
        "staff": 5000, "l4l_participants_2018_12": 150.0, "l4l_complete_2021_03": 200.0, "l4l_in_progress_2021_03": 80.0,
        "alt_complete_2021_03": 20.0, "alt_in_progress_2021_03": 1.0, "value_streams_2019_07": 5.0,
        "rpiws_2019_07": 20.0, "lead_time_baseline_hours": 1000.0, "lead_time_post_hours": 400.0,
        "l4l_participants_2018_11": 140.0, "value_stream_selection": "top_down",
        "lead_time_reduction": 0.6, "quality_final": 2.0, "engagement_mean_final": 0.5, "morale_final": 0.5,
        "cqc": {"2014": "good", "2015": "requires_improvement", "2016": "good", "2018": "requires_improvement", "2019": "good", "2020": "inadequate",
                "2021": "outstanding"},
        "cqc_latest": "outstanding", "cqc_latest_score": 3,
        "survey": {"actors": 100, "ties": 150, "dyad_reciprocity": 0.3, "brokerage_simple_share": 0.5,
                   "isolated_share": 0.2},
    }
    for key, value in changes.items():
        if key in ("survey", "cqc"):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def write(tmp_path, data) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


GOOD_TARGET = {"trust": "SASH", "statistic": "rpiws_2019_07", "kind": "count", "observed": 23,
               "source": "Table 7.1", "weight": 1.0, "role": "fitted"}
POOLED = {"trust": "all", "statistic": "lead_time_reduction", "kind": "ratio", "observed": 0.5, "source": "x",
          "weight": 2.0, "role": "fitted", "pooled": {"SASH": [100, 50], "SATH": [300, 150]}}


def test_shipped_targets_cover_every_pattern_of_the_brief():
    targets = load_targets(DEFAULT_TARGETS)
    ids = {t.id for t in targets.targets}
    for trust in TRUST_NAMES:
        for statistic in ("l4l_complete_2021_03", "l4l_in_progress_2021_03", "alt_complete_2021_03",
                          "alt_in_progress_2021_03", "rpiws_2019_07", "value_streams_2019_07",
                          "lead_time_reduction", "l4l_participants_2018_12"):
            assert f"{trust}.{statistic}" in ids
        # every CQC inspection of Table 4.1, the pre-programme one included (model v2 starts in 2013)
        assert sum(t.trust == trust and t.kind == "ordinal" for t in targets.targets) == 3
        assert f"{trust}.l4l_participants_2018_11" in ids and f"{trust}.value_stream_selection" in ids
    assert "SASH.survey.dyad_reciprocity.highest" in ids
    assert "SATH.survey.brokerage_simple_share.highest" in ids
    assert all(t.source and (t.weight > 0) == (t.role == "fitted") for t in targets.targets)
    # the main lead-time target is the pooled one; each trust's weighs its share of the 82 paired RPIWs
    by_id = targets.by_id()
    assert by_id["all.lead_time_reduction"].weight == max(t.weight for t in targets.targets)
    assert sum(by_id[f"{t}.lead_time_reduction"].weight for t in TRUST_NAMES) == pytest.approx(1.0, abs=0.02)
    assert by_id["SATH.lead_time_reduction"].weight > by_id["UHCW.lead_time_reduction"].weight


def test_shipped_targets_match_the_published_figures():
    data = yaml.safe_load(PUBLISHED.read_text())
    by_id = load_targets(DEFAULT_TARGETS).by_id()
    for trust, row in data["training_march_2021"].items():
        for key in ("l4l_complete", "l4l_in_progress", "alt_complete", "alt_in_progress"):
            assert by_id[f"{trust}.{key}_2021_03"].observed == row[key]
    for trust, row in data["rpiws_july_2019"].items():
        assert by_id[f"{trust}.rpiws_2019_07"].observed == row["rpiws"]
        assert by_id[f"{trust}.value_streams_2019_07"].observed == row["value_streams"]
    for trust, row in data["rpiw_lead_time_hours"].items():
        if trust != "all":
            assert by_id[f"{trust}.lead_time_reduction"].observed == pytest.approx(
                1 - row["post_90_days"] / row["baseline"], abs=0.001)
    pooled = by_id["all.lead_time_reduction"]
    table_7_3 = data["rpiw_lead_time_minutes_per_rpiw"]
    assert pooled.observed == pytest.approx(1 - table_7_3["post_mean"] / table_7_3["baseline_mean"], abs=0.001)
    everything = data["rpiw_lead_time_hours"]["all"]
    assert pooled.observed == pytest.approx(1 - everything["post_90_days"] / everything["baseline"], abs=0.001)
    assert table_7_3["n"] == everything["n"] == 82
    for trust, row in data["rpiw_lead_time_hours"].items():
        if trust != "all":
            assert list(pooled.pooled[trust]) == [row["baseline"], row["post_90_days"]]
            assert by_id[f"{trust}.lead_time_reduction"].weight == pytest.approx(row["n"] / 82, abs=0.005)
    for trust, count in data["l4l_survey_nov_2018"]["invitations"].items():
        assert by_id[f"{trust}.l4l_participants_2018_11"].observed == count
        assert by_id[f"{trust}.l4l_participants_2018_11"].role == "checked"
    for trust, count in data["network_survey_dec_2018"]["invitations"].items():
        assert by_id[f"{trust}.l4l_participants_2018_12"].observed == count
    for trust, row in data["trusts"].items():
        assert by_id[f"{trust}.value_stream_selection"].observed == row["value_stream_selection"]
        assert by_id[f"{trust}.cqc.{row['cqc']['pre']['year']}"].observed == row["cqc"]["pre"]["rating"]
        for phase in ("during", "latest"):
            assert by_id[f"{trust}.cqc.{row['cqc'][phase]['year']}"].observed == row["cqc"][phase]["rating"]
        assert load_targets(DEFAULT_TARGETS).cqc_before[trust] == row["cqc"]["pre"]["rating"]


def test_statistics_of_a_hand_made_summary():
    targets = load_targets(DEFAULT_TARGETS)
    summaries = {trust: summary() for trust in TRUST_NAMES}
    summaries["SASH"] = summary(survey={"dyad_reciprocity": 0.9, "isolated_share": 0.05})
    summaries["SATH"] = summary(l4l_complete_2021_03=274.0, survey={"dyad_reciprocity": 0.1,
                                                                     "brokerage_simple_share": 0.4,
                                                                     "isolated_share": 0.1})
    stats = simulated_statistics(summaries, targets)
    assert stats["SATH.l4l_complete_2021_03"] == 274.0
    assert stats["UHCW.lead_time_reduction"] == 0.6
    assert stats["SASH.cqc.2021"] == 3.0          # outstanding
    assert stats["SATH.cqc.2020"] == 0.0          # inadequate
    assert stats["UHCW.cqc.2018"] == 1.0          # requires improvement
    assert stats["SASH.survey.dyad_reciprocity.highest"] == 1.0          # holds: SASH highest
    assert stats["SATH.survey.dyad_reciprocity.lowest"] == 1.0           # holds: SATH lowest (within 2)
    assert stats["SATH.survey.brokerage_simple_share.highest"] == 5.0   # the 4 others (0.5) are higher: rank 5
    assert stats["SASH.survey.isolated_share.lowest"] == 1.0
    assert stats["SATH.survey.isolated_share.highest_than_UHCW"] == 2.0  # 0.1 < UHCW's 0.2: fails
    assert stats["SASH.value_stream_selection"] == 1.0 and stats["SATH.value_stream_selection"] == 0.0
    assert stats["all.lead_time_reduction"] == pytest.approx(0.6)        # 1 - 5 x 400 / (5 x 1000)
    assert set(stats) == set(targets.observed())


def test_pooled_lead_time_pools_the_trusts_present_in_runs_and_in_the_published_figures():
    targets = load_targets(DEFAULT_TARGETS)
    summaries = {"SASH": summary(lead_time_baseline_hours=100.0, lead_time_post_hours=90.0),
                 "SATH": summary(lead_time_baseline_hours=300.0, lead_time_post_hours=30.0)}
    stats = simulated_statistics(summaries, targets)
    assert stats["all.lead_time_reduction"] == pytest.approx(1 - 120 / 400)   # sums, not a mean of ratios
    four = [t for t in TRUST_NAMES if t != "SATH"]
    assert targets.observed(four)["all.lead_time_reduction"] == pytest.approx(
        1 - (1858 - 924) / (4878 - 2663), abs=1e-9)                          # Table 7.2 without SATH
    assert targets.observed()["all.lead_time_reduction"] == 0.619


def test_checked_targets_are_reported_but_never_fitted():
    targets = load_targets(DEFAULT_TARGETS)
    fitted = {t.id for t in targets.fitted().targets}
    assert "SASH.l4l_participants_2018_11" not in fitted and "SASH.l4l_participants_2018_12" in fitted
    assert "SASH.l4l_participants_2018_11" in simulated_statistics({t: summary() for t in TRUST_NAMES}, targets)


def test_a_trusts_rpiw_count_is_fitted_and_says_so_where_its_pace_is_free():
    from sim.calibration.priors import load_priors

    by_id = load_targets(DEFAULT_TARGETS).by_id()
    for prior in load_priors(DEFAULT_PRIORS).priors:
        if prior.field == "programme.rpiws_per_year":
            target = by_id[f"{prior.trust}.rpiws_2019_07"]
            assert target.role == "fitted" and "fitted, not predicted" in target.note


def test_ordering_rank_counts_strictly_more_extreme_trusts():
    targets = load_targets(DEFAULT_TARGETS)
    shares = {"SASH": 0.1, "LTHT": 0.2, "UHCW": 0.3, "SATH": 0.25, "BHRUT": 0.4}
    summaries = {t: summary(survey={"brokerage_simple_share": v}) for t, v in shares.items()}
    stats = simulated_statistics(summaries, targets)
    assert stats["SATH.survey.brokerage_simple_share.highest"] == 3.0  # UHCW and BHRUT above it


def test_leaving_a_trust_out_drops_its_targets_and_its_comparisons():
    targets = load_targets(DEFAULT_TARGETS)
    summaries = {t: summary() for t in TRUST_NAMES if t != "UHCW"}
    stats = simulated_statistics(summaries, targets)
    assert not any(k.startswith("UHCW.") for k in stats)
    assert "SATH.survey.isolated_share.highest_than_UHCW" not in stats
    assert set(stats) == set(targets.observed([t for t in TRUST_NAMES if t != "UHCW"]))


def test_statistics_over_fewer_trusts_from_a_five_trust_runs_components():
    """A five-trust run's statistics and components give, for any four trusts, what runs of the four give."""
    targets = load_targets(DEFAULT_TARGETS)
    rng = np.random.default_rng(3)
    summaries = {t: summary(lead_time_baseline_hours=float(rng.uniform(100, 900)),
                            lead_time_post_hours=float(rng.uniform(50, 400)),
                            survey={m: float(rng.uniform()) for m in ("dyad_reciprocity", "brokerage_simple_share",
                                                                      "isolated_share")}) for t in TRUST_NAMES}
    every = simulated_statistics(summaries, targets)
    components = cross_trust_components(summaries, targets)
    assert "BHRUT.survey.isolated_share" in components and "SATH.lead_time_post_hours" in components
    for left_out in TRUST_NAMES:
        four = {t: s for t, s in summaries.items() if t != left_out}
        assert statistics_over(four, every, components, targets) == simulated_statistics(four, targets)
    assert statistics_over(TRUST_NAMES, every, components, targets) == every


def test_missing_statistic_in_a_summary_is_a_clear_error():
    targets = load_targets(DEFAULT_TARGETS)
    broken = summary()
    del broken["cqc"]["2019"]
    with pytest.raises(InputError, match="SASH.cqc.2019"):
        simulated_statistics({"SASH": broken}, targets)


@pytest.mark.parametrize("content, expected", [
    ("targets: [\n  - {trust: SASH", "YAML syntax error"),
    ("- just a list", "a mapping"),
    ({"targets": []}, "field 'targets'"),
    ({"targets": [{**GOOD_TARGET, "colour": "red"}]}, "field 'targets.0.colour': unknown field"),
    ({"targets": [{**GOOD_TARGET, "trust": "XYZ"}]}, "field 'targets.0.trust'"),
    ({"targets": [{**GOOD_TARGET, "kind": "vibe"}]}, "field 'targets.0.kind'"),
    ({"targets": [{**GOOD_TARGET, "weight": -1}]}, "field 'targets.0.weight'"),
    ({"targets": [{**GOOD_TARGET, "statistic": "happiness"}]}, "unknown statistic 'happiness'"),
    ({"targets": [{**GOOD_TARGET, "observed": "many"}]}, "must be a number"),
    ({"targets": [{**GOOD_TARGET, "kind": "ratio", "observed": 1.5}]}, "outside 0..1"),
    ({"targets": [{**GOOD_TARGET, "kind": "ordinal", "statistic": "cqc.2019", "observed": "great"}]},
     "one of inadequate"),
    ({"targets": [{**GOOD_TARGET, "kind": "ordering", "statistic": "survey.dyad_reciprocity",
                   "observed": "highest"}]}, "relation"),
    ({"targets": [{**GOOD_TARGET, "statistic": "survey.reciprocity"}]}, "unknown statistic 'survey.reciprocity'"),
    ({"targets": [GOOD_TARGET, GOOD_TARGET]}, "appears twice"),
    ({"targets": [{k: v for k, v in GOOD_TARGET.items() if k != "role"}]}, "field 'targets.0.role'"),
    ({"targets": [{**GOOD_TARGET, "role": "checked"}]}, "a checked target is never fitted (weight 0)"),
    ({"targets": [{**POOLED, "observed": 0.6}]}, "not the pooling of its components"),
    ({"targets": [{**POOLED, "pooled": None}]}, "needs 'pooled'"),
    ({"targets": [{**GOOD_TARGET, "pooled": {"SASH": [1, 0]}}]}, "needs 'pooled'"),
    ({"targets": [{**GOOD_TARGET, "kind": "choice", "statistic": "value_stream_selection", "observed": "sideways"}]},
     "one of top_down, bottom_up"),
])
def test_malformed_targets_name_file_and_field(tmp_path, content, expected):
    path = write(tmp_path, content)
    with pytest.raises(InputError) as error:
        load_targets(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_missing_targets_file(tmp_path):
    with pytest.raises(InputError, match="cannot read targets file"):
        load_targets(tmp_path / "nope.yaml")


def test_shipped_posteriors_were_fitted_to_the_shipped_targets_and_priors():
    """A change to targets.yaml or a priors file must come with a recalibration: every shipped
    posterior's manifest (the main one and each block's, calibration/*/) names the SHA-256 of the files
    it was fitted to, and the main one was fitted to calibration/priors.yaml."""
    from sim.calibration.targets import REPO_ROOT

    folder = Path(DEFAULT_TARGETS).parent
    manifests = sorted(folder.glob("posterior_*.manifest.json")) + sorted(folder.glob("*/posterior_*.manifest.json"))
    assert any(path.parent == folder for path in manifests), "no shipped posterior"
    for path in manifests:
        manifest = json.loads(path.read_text())
        assert manifest["targets_sha256"] == file_sha256(DEFAULT_TARGETS), path.name
        assert manifest["priors_sha256"] == file_sha256(REPO_ROOT / manifest["priors_file"]), path.name
        if path.parent == folder:
            assert REPO_ROOT / manifest["priors_file"] == Path(DEFAULT_PRIORS), path.name


def test_the_shipped_posterior_is_a_posterior_of_this_model():
    """Between a model change and its recalibration the shipped posterior must still match the model:
    every column is a parameter of sim/parameters.yaml or a scenario field, and every value is allowed."""
    from sim.calibration.posterior import load_posterior
    from sim.params import PARAMETERS

    posterior = load_posterior(Path(DEFAULT_TARGETS).parent / "posterior_main.csv")
    params, overrides = posterior.parameter_set(0)
    assert set(params) == set(PARAMETERS)
    manifest = json.loads((Path(DEFAULT_TARGETS).parent / "posterior_main.manifest.json").read_text())
    assert manifest["fixed_params"].keys() <= PARAMETERS.keys()
