"""Screening the calibration's free parameters (sim/calibration/screen.py): the distance it screens and a tiny run."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sim.calibration.priors import load_priors
from sim.calibration.screen import distances, family

NEXT_PRIORS, NEXT_TARGETS = "calibration/next/priors.yaml", "calibration/next/targets.yaml"   # the calibration under way


@pytest.mark.parametrize("target_id, expected", [
    ("SASH.cqc.2019", "CQC ratings"), ("LTHT.l4l_complete_2021_03", "L4L counts"),
    ("SATH.l4l_participants_2018_12", "L4L counts"), ("UHCW.alt_in_progress_2021_03", "ALT counts"),
    ("BHRUT.rpiws_2019_07", "RPIWs"), ("SASH.value_streams_2019_07", "value streams"),
    ("SATH.value_stream_selection", "value streams"), ("LTHT.lead_time_reduction", "lead time"),
])
def test_every_target_falls_in_its_family(target_id, expected):
    assert family(target_id) == expected


def test_every_shipped_target_has_a_family_and_a_block_fits_only_its_own():
    from sim.calibration.targets import FAMILIES, load_targets, target_family

    targets = load_targets()
    assert {target_family(t.id) for t in targets.targets} == set(FAMILIES)
    census = targets.fitted().in_families(["l4l"]).targets
    assert {t.statistic for t in census} == {"l4l_participants_2018_12", "l4l_complete_2021_03",
                                             "l4l_in_progress_2021_03"}
    assert len(census) == 15
    assert targets.in_families([]) == targets


def test_the_distance_is_the_weighted_l1_over_rmsd_scaled_deviations_summed_per_family():
    stats = pd.DataFrame({"A.cqc.2019": [1.0, 3.0], "A.rpiws_2019_07": [10.0, 30.0]})
    observed = {"A.cqc.2019": 2.0, "A.rpiws_2019_07": 20.0}
    weights = {"A.cqc.2019": 2.0, "A.rpiws_2019_07": 1.0}
    out = distances(stats, observed, weights)
    # deviations 1 and 10; rmsd 1 and 10; so 2 x 1 + 1 x 1 = 3 in both runs
    np.testing.assert_allclose(out["distance"], [3.0, 3.0])
    np.testing.assert_allclose(out["distance CQC ratings"], [2.0, 2.0])
    np.testing.assert_allclose(out["distance RPIWs"], [1.0, 1.0])


def test_a_tiny_screen_writes_its_tables_for_every_free_parameter_and_repeats_exactly(tmp_path):
    def run(out):
        done = subprocess.run([sys.executable, "-m", "sim.cli", "calibrate-screen", "--trajectories", "2",
                               "--scale", "0.03", "--trusts", "SATH", "--workers", "2", "--out", str(out),
                               "--priors", str(NEXT_PRIORS), "--targets", str(NEXT_TARGETS)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return out

    first, second = run(tmp_path / "a"), run(tmp_path / "b")
    for name in ("screen.md", "screen.png", "screen.csv", "runs.csv", "manifest.json"):
        assert (first / name).is_file(), name
    table = pd.read_csv(first / "screen.csv")
    free = load_priors(NEXT_PRIORS).for_trusts(["SATH"]).names     # the priors file given, not the default
    assert sorted(table.loc[table["output"] == "distance", "parameter"]) == sorted(free)
    assert (table["mu_star"] >= 0).all() and table["mu_star"].max() > 0
    pd.testing.assert_frame_equal(pd.read_csv(first / "runs.csv"), pd.read_csv(second / "runs.csv"))


def test_bad_options_get_a_clear_error_and_no_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sim.cli", "calibrate-screen", "--levels", "1",
                           "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "--levels" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists()
    done = subprocess.run([sys.executable, "-m", "sim.cli", "calibrate-screen", "--priors", str(tmp_path / "none.yaml"),
                           "--out", str(tmp_path / "y")], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "none.yaml" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "y").exists()
