"""Calibration targets file and the one statistics function (sim/calibration/targets.py)."""

import json
from pathlib import Path

import pytest
import yaml

from sim.calibration.priors import DEFAULT_PRIORS
from sim.calibration.provenance import file_sha256
from sim.calibration.targets import DEFAULT_TARGETS, TRUST_NAMES, load_targets, simulated_statistics
from sim.errors import InputError

PUBLISHED = Path(__file__).resolve().parents[1] / "docs" / "data" / "nhs_vmi_trusts.yaml"  # Burgess et al. 2022


def summary(**changes) -> dict:
    """A hand-made summary of one trust, in the shape of RunResult.summary."""
    base = {
        "staff": 5000, "l4l_participants_2018_12": 150.0, "l4l_complete_2021_03": 200.0, "l4l_in_progress_2021_03": 80.0,
        "alt_complete_2021_03": 20.0, "alt_in_progress_2021_03": 1.0, "value_streams_2019_07": 5.0,
        "rpiws_2019_07": 20.0, "lead_time_baseline_hours": 1000.0, "lead_time_post_hours": 400.0,
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
               "source": "Table 7.1", "weight": 1.0}


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
    assert "SASH.survey.dyad_reciprocity.highest" in ids
    assert "SATH.survey.brokerage_simple_share.highest" in ids
    assert all(t.weight > 0 and t.source for t in targets.targets)


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
    for trust, row in data["trusts"].items():
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
    assert set(stats) == set(targets.observed())


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
    """A change to targets.yaml or priors.yaml must come with a recalibration: every shipped
    posterior's manifest names the SHA-256 of the files it was fitted to."""
    manifests = sorted(Path(DEFAULT_TARGETS).parent.glob("posterior_*.manifest.json"))
    assert manifests, "no shipped posterior"
    for path in manifests:
        manifest = json.loads(path.read_text())
        assert manifest["targets_sha256"] == file_sha256(DEFAULT_TARGETS), path.name
        assert manifest["priors_sha256"] == file_sha256(DEFAULT_PRIORS), path.name


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
