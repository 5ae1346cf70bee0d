"""Calibration in blocks (sim/calibration/blocks.py): a block's posterior as truncated priors."""

import json

import pandas as pd
import pytest
import yaml

from sim.calibration.blocks import priors_fragment, truncated_ranges
from sim.calibration.posterior import load_posterior
from sim.calibration.targets import REPO_ROOT as REPO
from sim.cli import main

PACE = "SASH.programme.changes.2019-01-01.l4l_cohorts_per_year"


def block_posterior(tmp_path):
    path = tmp_path / "posterior_block.csv"
    pd.DataFrame({"dropout_per_module": [0.10, 0.12, 0.20], PACE: [3.0, 4.0, 5.0],
                  "weight": [0.2, 0.5, 0.3]}).to_csv(path, index=False)
    priors = [{"name": "dropout_per_module", "low": 0.0, "high": 0.3}, {"name": PACE, "low": 0.0, "high": 15.0}]
    path.with_name("posterior_block.manifest.json").write_text(json.dumps({"priors": priors}))
    return path


def test_a_block_s_range_holds_its_population_widened_inside_its_prior(tmp_path):
    ranges = truncated_ranges(load_posterior(block_posterior(tmp_path)), widen=0.25)
    assert ranges[PACE] == (2.5, 5.5)                           # span 2, a quarter of it on each side
    assert ranges["dropout_per_module"] == pytest.approx((0.075, 0.225))
    assert truncated_ranges(load_posterior(block_posterior(tmp_path)), widen=10)[PACE] == (0.0, 15.0)  # the prior caps


def test_the_fragment_is_a_priors_file_the_next_calibration_reads(tmp_path):
    from sim.calibration.priors import load_priors

    fragment = priors_fragment(truncated_ranges(load_posterior(block_posterior(tmp_path))), "block")
    (tmp_path / "priors.yaml").write_text(fragment)
    priors = {p.name: (p.low, p.high) for p in load_priors(tmp_path / "priors.yaml").priors}
    assert priors == {"dropout_per_module": pytest.approx((0.075, 0.225)), PACE: (2.5, 5.5)}
    assert yaml.safe_load(fragment)["per_trust"] == {"programme.changes.2019-01-01.l4l_cohorts_per_year":
                                                     {"SASH": [2.5, 5.5]}}


def test_calibrate_truncate_prints_it_and_refuses_a_file_without_priors(tmp_path, capsys):
    assert main(["calibrate-truncate", str(block_posterior(tmp_path))]) == 0
    assert "SASH: [2.5, 5.5]" in capsys.readouterr().out
    (tmp_path / "posterior_block.manifest.json").write_text("{}")
    assert main(["calibrate-truncate", str(tmp_path / "posterior_block.csv")]) == 2
    assert "its manifest lists no priors" in capsys.readouterr().err


def test_blocks_of_several_trusts_join_and_share_the_widest_range():
    from sim.calibration.blocks import union_of_ranges

    joined = union_of_ranges([{"dropout_per_module": (0.1, 0.2), "SASH.programme.l4l_cohorts_per_year": (2, 4)},
                              {"dropout_per_module": (0.05, 0.15), "SATH.programme.l4l_cohorts_per_year": (5, 9)}])
    assert joined == {"dropout_per_module": (0.05, 0.2), "SASH.programme.l4l_cohorts_per_year": (2, 4),
                      "SATH.programme.l4l_cohorts_per_year": (5, 9)}


def test_the_shipped_priors_truncate_the_census_blocks_as_their_posteriors_say():
    """calibration/priors.yaml draws every parameter of the census blocks from the range calibrate-truncate gives
    for the shipped block posteriors (their union): the two cannot drift apart."""
    from sim.calibration.blocks import union_of_ranges
    from sim.calibration.priors import DEFAULT_PRIORS, load_priors

    blocks = sorted((DEFAULT_PRIORS.parent / "census").glob("posterior_census_*.csv"))
    assert len(blocks) == 5, "one census block per trust"
    posteriors = [load_posterior(path) for path in blocks]
    assert all(posterior.manifest["fitted_families"] == ["l4l"] for posterior in posteriors)
    main_priors = {p.name: (p.low, p.high) for p in load_priors(DEFAULT_PRIORS).priors}
    for name, (low, high) in union_of_ranges([truncated_ranges(posterior) for posterior in posteriors]).items():
        assert main_priors[name] == pytest.approx((low, high)), name


def test_truncate_onto_writes_the_next_priors_file_with_reasons_and_other_priors_kept(tmp_path, capsys):
    """--onto/--out: the next calibration's priors file is the base with the blocks' ranges, nothing else changed."""
    from sim.calibration.priors import load_priors

    base = REPO / "calibration" / "next" / "priors.yaml"
    out = tmp_path / "priors_truncated.yaml"
    assert main(["calibrate-truncate", str(block_posterior(tmp_path)), "--onto", str(base), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "2 of the posteriors' 2 parameters narrowed" in said and "still span" not in said
    before = {p.name: p for p in load_priors(base).priors}
    after = {p.name: p for p in load_priors(out).priors}
    assert set(after) == set(before)
    assert (after["dropout_per_module"].low, after["dropout_per_module"].high) == pytest.approx((0.075, 0.225))
    assert (after[PACE].low, after[PACE].high) == (2.5, 5.5)
    assert after["dropout_per_module"].why == before["dropout_per_module"].why and after[PACE].why == before[PACE].why
    for name in set(before) - {"dropout_per_module", PACE}:
        assert (after[name].low, after[name].high, after[name].log) == (before[name].low, before[name].high, before[name].log)
    text = out.read_text()
    assert text.startswith("# Written by `orgsim calibrate-truncate") and "# Free parameters of the calibration" in text
    assert "2 of their 2 parameters narrowed" in text
    # a population that still spans every prior truncates nothing, and says so rather than claiming a truncation
    wide = tmp_path / "priors_wide.yaml"
    assert main(["calibrate-truncate", str(block_posterior(tmp_path)), "--widen", "10", "--onto", str(base),
                 "--out", str(wide)]) == 0
    assert "0 of the posteriors' 2 parameters narrowed" in capsys.readouterr().out
    assert {p.name: (p.low, p.high) for p in load_priors(wide).priors} == \
        {p.name: (p.low, p.high) for p in load_priors(base).priors}


def test_truncate_onto_refuses_a_base_that_does_not_free_the_block_s_parameters(tmp_path, capsys):
    base = tmp_path / "base.yaml"
    base.write_text("shared:\n  dropout_per_module: {low: 0.0, high: 0.3, why: test}\n")
    out = tmp_path / "out.yaml"
    assert main(["calibrate-truncate", str(block_posterior(tmp_path)), "--onto", str(base), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "frees no parameter named SASH.programme.changes.2019-01-01.l4l_cohorts_per_year" in err
    assert "Traceback" not in err and not out.exists() and not list(tmp_path.glob("*.draft"))
    assert main(["calibrate-truncate", str(block_posterior(tmp_path)), "--onto", str(base)]) == 2
    assert "--onto BASE and --out FILE together" in capsys.readouterr().err
    assert main(["calibrate-truncate", str(block_posterior(tmp_path)), "--onto", str(base), "--out", str(base)]) == 2
    assert "is the base priors file" in capsys.readouterr().err
