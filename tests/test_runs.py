"""Runs are reproducible, folders complete and atomic, and the CLI runs all five trusts end to end."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sim.cli import main
from sim.params import PARAMETERS
from sim.runner import TRUSTS, AtomicFolder, simulate
from sim.scenario import load_scenario

SHORT = ["--scale", "0.05", "--end", "2016-12-31", "--no-plots"]


def run_cli(out, *extra):
    assert main(["run", "SATH", "BHRUT", "--out", str(out), *SHORT, *extra]) == 0
    return (out / "timeseries.csv").read_bytes()


def test_same_seed_same_timeseries_different_seed_differs(tmp_path):
    a = run_cli(tmp_path / "a", "--seed", "7")
    b = run_cli(tmp_path / "b", "--seed", "7")
    c = run_cli(tmp_path / "c", "--seed", "8")
    assert a == b
    assert a != c


def test_a_trust_runs_the_same_alone_or_with_others(tmp_path):
    assert main(["run", "SATH", "BHRUT", "--out", str(tmp_path / "both"), *SHORT]) == 0
    assert main(["run", "BHRUT", "--out", str(tmp_path / "one"), *SHORT]) == 0
    both = pd.read_csv(tmp_path / "both" / "timeseries.csv")
    one = pd.read_csv(tmp_path / "one" / "timeseries.csv")
    pd.testing.assert_frame_equal(both[both.trust == "BHRUT"].reset_index(drop=True), one)


def test_the_calibration_s_short_census_gives_the_same_run_and_summary():
    """Calibration collects only the census columns the summary reads (sim.reporters.SUMMARY_REPORTERS): the run
    and its summary are the full census's, and an unknown reporter is refused by name."""
    from sim.reporters import SUMMARY_REPORTERS
    full = simulate(load_scenario("SASH"), None, seed=3, scale=0.05)        # to 2022: every census date passed
    short = simulate(load_scenario("SASH"), None, seed=3, scale=0.05, census=SUMMARY_REPORTERS)
    assert list(short.timeseries.columns) == ["trust", "week", *SUMMARY_REPORTERS, "cqc_band"]
    pd.testing.assert_frame_equal(short.timeseries, full.timeseries[short.timeseries.columns])
    same = [json.dumps(run.summary, sort_keys=True, default=str) for run in (short, full)]
    assert same[0] == same[1]
    assert full.summary["l4l_complete_2021_03"] > 0 and full.summary["rpiws_2019_07"] > 0
    with pytest.raises(ValueError, match=r"census: unknown reporter\(s\) \['wellbeing'\]"):
        simulate(load_scenario("SASH"), None, seed=3, scale=0.05, census=("date", "wellbeing"))


def test_orgsim_starts_without_the_libraries_only_some_commands_use():
    """pyabc, scipy.stats (SALib) and matplotlib's pyplot take seconds to import: every orgsim command (and every
    test that runs one) paid them at start until they were imported on use."""
    import subprocess
    import sys

    heavy = ("pyabc", "scipy.stats", "SALib.analyze.sobol", "SALib.sample.sobol", "matplotlib.pyplot")
    probe = (f"import sys; from sim.cli import build_parser; build_parser(); "
             f"print([name for name in {heavy!r} if name in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_end_to_end_all_five_trusts(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--all", "--out", str(out), "--scale", "0.05", "--end", "2019-12-31"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == list(TRUSTS)
    for trust, s in summary.items():
        for key in ("staff", "l4l_complete_2021_03", "l4l_in_progress_2021_03", "alt_complete_2021_03",
                    "value_streams_2019_07", "rpiws_2019_07", "lead_time_baseline_hours", "lead_time_post_hours", "cqc"):
            assert key in s, (trust, key)
        assert s["lead_time_post_hours"] <= s["lead_time_baseline_hours"]
        for key in ("actors", "ties", "dyad_reciprocity", "arc_reciprocity", "brokerage_simple",
                    "brokerage_recip_in", "brokerage_recip_out", "brokerage_both", "comparable"):
            assert key in s["survey"], (trust, key)
        assert s["survey"]["comparable"] is False          # a scale-0.05 survey is not the evaluation's
        edges = pd.read_csv(out / f"survey_network_{trust}.csv")
        assert {"source", "target", "reciprocated"} <= set(edges.columns)
        assert s["value_stream_selection"] in ("top_down", "bottom_up")
        assert set(s["quality_contributions"]) >= {"settling", "engagement", "practice", "process", "noise"}
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("version", "git_commit", "scenarios", "parameters", "seed", "timings"):
        assert key in manifest
    for png in ("training.png", "rpiws.png", "quality.png", "network.png", "comparison.png", "survey_networks.png"):
        assert (out / png).stat().st_size > 1000
    frame = pd.read_csv(out / "timeseries.csv")
    assert set(frame.trust) == set(TRUSTS) and frame.groupby("trust").size().min() > 200


def test_failed_run_leaves_no_folder_and_keeps_the_old_one(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text('{"package": "orgsim"}')   # an earlier run folder
    (out / "summary.json").write_text("{}")
    with pytest.raises(RuntimeError):
        with AtomicFolder(out) as folder:
            (folder / "timeseries.csv").write_text("half")
            raise RuntimeError("crash")
    assert (out / "summary.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


unit_params = st.fixed_dictionaries({name: st.floats(spec.low, spec.high) for name, spec in PARAMETERS.items()})


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=unit_params, trust=st.sampled_from(TRUSTS), seed=st.integers(0, 2**31))
def test_invariants_hold_for_any_parameters_in_range(params, trust, seed):
    import datetime as dt
    result = simulate(load_scenario(trust), params, seed, scale=0.03, end=dt.date(2019, 9, 30))
    frame, s = result.timeseries, result.summary
    for column in ("practising_share", "capability_mean", "engagement_mean", "morale_mean", "network_arc_reciprocity"):
        assert frame[column].between(0, 1).all(), column
    assert np.isfinite(frame["quality"]).all()
    # the terms of the quality change add up to the change (ODD 7.8)
    contributions = frame.filter(like="quality_contribution_").sum(axis=1).to_numpy()
    assert np.allclose(np.diff(frame["quality"].to_numpy()), contributions[1:])
    assert (frame["l4l_complete"] + frame["l4l_in_progress"] <= frame["staff"] + 1e-9).all()
    assert (np.diff(frame["rpiws"]) >= 0).all() and (np.diff(frame["value_streams"]) >= 0).all()
    assert 0 <= s["lead_time_post_hours"] <= s["lead_time_baseline_hours"]
    assert s["value_streams_2019_07"] <= max(s["rpiws_2019_07"], 0) or s["rpiws_2019_07"] == 0
    assert not frame.drop(columns=["engagement_untrained", "trained_arc_reciprocity"]).isna().any().any()


def test_a_ctrl_c_inside_a_compiled_kernel_is_an_interruption_not_a_system_error(monkeypatch):
    """numba runs Python callbacks inside compiled kernels; a Ctrl-C landing in one comes out as a SystemError
    chained to the KeyboardInterrupt. simulate turns it back into the KeyboardInterrupt every caller handles."""
    from sim import network
    from sim.params import default_params

    def interrupted_kernel(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise SystemError("CPUDispatcher(<function weekly_flows>) returned a result with an exception set") \
                from interrupt

    monkeypatch.setattr(network.kernels, "weekly_flows", interrupted_kernel)
    with pytest.raises(KeyboardInterrupt):
        simulate(load_scenario("SATH"), default_params(), 1, scale=0.02)

    def broken_kernel(*args, **kwargs):
        raise SystemError("a real fault")

    monkeypatch.setattr(network.kernels, "weekly_flows", broken_kernel)
    with pytest.raises(SystemError, match="a real fault"):
        simulate(load_scenario("SATH"), default_params(), 1, scale=0.02)
