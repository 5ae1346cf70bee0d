"""Calibration v2 machinery: convergence measures and stopping, proper scores, pattern status, SBC, every LOTO.

Runs are tiny (scale 0.05, one or two trusts, cut at January 2019, populations of 10, one generation).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.calibration.convergence import (ConvergenceRule, compare_generations, generation_records, shift_noise,
                                         weighted_ks)
from sim.calibration.priors import Prior, PriorSet
from sim.calibration.report import (UNIFORM_SHARES, pattern_status, ranked_probability_score, rps_rows, sbc_section,
                                    survey_measure_rows, validate_section)
from sim.calibration.sbc import draw_truth, pseudo_targets, rank_of, run_sbc, sbc_table
from sim.calibration.smc import StoppingRules, _run_abc
from sim.calibration.targets import DEFAULT_TARGETS, TRUST_NAMES, load_targets
from sim.errors import InputError

END = "2019-01-01"
SCALE = 0.05
PRIORS = PriorSet((Prior("a", 0.0, 1.0, False, "test"), Prior("b", 1.0, 100.0, True, "test")))


def generation(a, b, weights=None):
    frame = pd.DataFrame({"a": a, "b": b})
    return frame, np.ones(len(frame)) if weights is None else np.asarray(weights, dtype=float)


def test_identical_generations_have_not_moved_and_a_shifted_one_has():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 1, 200), np.exp(rng.uniform(0, np.log(100), 200))
    same = compare_generations(generation(a, b), generation(a, b), PRIORS)
    assert same["posterior_shift"] == 0 and same["ks_max"] == 0
    moved = compare_generations(generation(a, b), generation(np.clip(a + 0.2, 0, 1), b), PRIORS)
    assert moved["posterior_shift"] == pytest.approx(0.2, abs=0.05) and moved["posterior_shift_parameter"] == "a"
    narrowed = compare_generations(generation(a, b), generation(0.5 + (a - 0.5) / 4, b), PRIORS)
    assert narrowed["posterior_shift"] > 0.5          # the 90% width fell from ~0.9 to ~0.22 of the prior range
    assert weighted_ks(np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([0.0, 1.0]), np.array([3.0, 1.0])) == \
        pytest.approx(0.25)


def test_the_shift_s_noise_is_what_resampling_alone_moves_and_grows_as_the_ess_falls():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0, 1, 200), np.exp(rng.uniform(0, np.log(100), 200))
    even = shift_noise(*generation(a, b), PRIORS)
    uneven = shift_noise(*generation(a, b, rng.exponential(1, 200) ** 3), PRIORS)     # an ESS of about 20
    assert 0.02 < even < 0.2 and uneven > 1.5 * even
    assert shift_noise(*generation(a, b), PRIORS) == even                           # seeded: the same history, the same
    assert shift_noise(*generation(np.full(200, 0.3), np.full(200, 5.0)), PRIORS) == 0   # nothing to resample


def test_the_convergence_rule_needs_epsilon_posterior_and_ess_together():
    rule = ConvergenceRule(tol=0.05, posterior_tol=0.1, min_ess=50)
    base = {"epsilon_change": 0.01, "posterior_shift": 0.05, "ess": 80}
    assert rule.met(base)
    assert not rule.met({**base, "epsilon_change": 0.2})
    assert not rule.met({**base, "posterior_shift": 0.3})
    # a shift above the tolerance passes only within what resampling one generation alone moves
    assert rule.met({**base, "posterior_shift": 0.3, "posterior_shift_noise": 0.3})
    assert not rule.met({**base, "posterior_shift": 0.3, "posterior_shift_noise": 0.25})
    assert not rule.met({**base, "posterior_shift": None, "posterior_shift_noise": 0.3})   # the first generation
    assert not rule.met({**base, "posterior_shift": 0.3, "posterior_shift_noise": 0.4, "ess": 20})   # noise needs ESS
    # a slow drift: within the noise each generation, beyond it over two
    assert rule.met({**base, "posterior_shift_2": 0.08})
    assert not rule.met({**base, "posterior_shift": 0.2, "posterior_shift_2": 0.35, "posterior_shift_noise": 0.25})
    assert rule.met({**base, "posterior_shift": 0.2, "posterior_shift_2": 0.22, "posterior_shift_noise": 0.25})
    assert not rule.met({**base, "ess": 20})
    assert not rule.met({**base, "epsilon_change": None, "posterior_shift": None})   # the first generation
    assert StoppingRules(converge=0.05).convergence_rule(200).min_ess == 100           # default: half the population
    # with the noise floor, epsilon inside what the best particles reach on fresh seeds has stopped falling usefully
    noisy = ConvergenceRule(tol=0.05, posterior_tol=0.1, min_ess=50, noise_floor=True)
    falling = {**base, "epsilon_change": 0.2, "epsilon": 30.0}
    assert noisy.met({**falling, "noise_floor_median": 31.0}) and noisy.met({**falling, "noise_floor_median": 30.0})
    assert not noisy.met({**falling, "noise_floor_median": 29.0}) and not noisy.met(falling)
    assert not rule.met({**falling, "noise_floor_median": 31.0})                    # only where the rule says so
    assert not noisy.met({**falling, "noise_floor_median": 31.0, "ess": 20})       # the other criteria still hold
    assert StoppingRules(converge=0.05, noise_particles=5).convergence_rule(200).noise_floor


class _History:
    """Enough of pyabc's History for generation_records: populations and weighted particles per generation."""

    def __init__(self, generations):
        self.generations = generations

    def get_all_populations(self):
        rows = [{"t": -1, "epsilon": np.inf, "samples": 0, "particles": 0, "wall_time": 0.0}]
        rows += [{"t": t, "epsilon": eps, "samples": 20, "particles": 10, "wall_time": 5.0}
                 for t, (eps, _) in enumerate(self.generations)]
        return pd.DataFrame(rows)

    def get_distribution(self, m, t):
        return self.generations[t][1]


def test_generation_records_carry_the_convergence_measures_and_a_run_loop_stops_on_them():
    a = np.linspace(0.05, 0.95, 10)
    b = np.linspace(2, 90, 10)
    history = _History([(10.0, generation(a, b)), (5.0, generation(a, b)), (4.9, generation(a, b))])
    records = generation_records(history, PRIORS)
    assert [r["t"] for r in records] == [0, 1, 2] and records[0]["epsilon_change"] is None
    assert all(r["posterior_shift_noise"] > 0 for r in records)
    assert records[1]["epsilon_change"] == pytest.approx(0.5) and records[2]["epsilon_change"] == pytest.approx(0.02)
    assert records[2]["posterior_shift"] == 0 and records[2]["ess"] == pytest.approx(10)
    assert records[1]["posterior_shift_2"] is None and records[2]["posterior_shift_2"] == 0
    assert records[2]["simulations_total"] == 60 and records[1]["acceptance_rate"] == 0.5
    rule = ConvergenceRule(0.05, 0.1, 5)
    assert [rule.met(r) for r in records] == [False, False, True]

    class _ABC:   # generations from the history above, one per run_generation call
        def __init__(self):
            self.history, self.t = _History([]), 0

        def initialize_components_before_run(self, **rules):
            return 0

        def run_generation(self, t):
            self.history.generations.append(history.generations[t])
            return {"successful": True, "acceptance_rate": 0.5}

        def check_terminate(self, t, acceptance_rate):
            return False

    def after(h):
        last = generation_records(h, PRIORS)[-1]
        return "converged" if rule.met(last) else None

    abc = _ABC()
    _, why = _run_abc(abc, StoppingRules(), started=0.0, after_generation=after)
    assert why == "converged" and len(abc.history.generations) == 3


def test_ranked_probability_score():
    assert ranked_probability_score([0, 0, 1, 0], 2) == 0                     # certain and right
    assert ranked_probability_score([1, 0, 0, 0], 3) == 1                     # certain, at the far end
    assert ranked_probability_score(UNIFORM_SHARES, 0) == pytest.approx((0.75 ** 2 + 0.5 ** 2 + 0.25 ** 2) / 3)
    assert ranked_probability_score(UNIFORM_SHARES, 1) == pytest.approx((0.25 ** 2 + 0.5 ** 2 + 0.25 ** 2) / 3)
    # one rating off is better than two off, with the same probability on the right one
    assert ranked_probability_score([0, 0.5, 0.5, 0], 3) < ranked_probability_score([0.5, 0, 0.5, 0], 3)
    targets = load_targets(DEFAULT_TARGETS)
    stats = pd.DataFrame({"weight": [0.5, 0.25, 0.25], "SASH.cqc.2021": [3.0, 3.0, 2.0],
                          "SATH.cqc.2020": [0.0, 1.0, 3.0]})
    rows = {(r["trust"], r["inspection"]): r for r in rps_rows(stats, targets, ["SASH", "SATH"])}
    assert rows[("SASH", "2021")]["outstanding"] == 0.75
    assert rows[("SASH", "2021")]["RPS"] == pytest.approx(0.25 ** 2 / 3)
    assert rows[("SATH", "2020")]["skill"] == pytest.approx(
        1 - ranked_probability_score([0.5, 0.25, 0, 0.25], 0) / ranked_probability_score(UNIFORM_SHARES, 0))


def test_the_report_lists_survey_medians_only_where_the_survey_is_comparable():
    full = {"median": 0.4, "q05": 0.1, "q95": 0.8}
    missing = {"median": None}        # all runs below full scale: the quantiles of NaN values
    summary = {"trusts": {"SASH": {"statistics": {"survey.isolated_share": full, "survey.named_kpo_share": full}},
                          "SATH": {"statistics": {"survey.isolated_share": missing}}}}
    rows = survey_measure_rows(summary)
    assert [r["trust"] for r in rows] == ["SASH"]
    assert rows[0]["isolated_share"] == 0.4 and rows[0]["named_kpo_share"] == 0.4 and rows[0]["actors"] is None


def test_every_pattern_is_fitted_predicted_or_checked():
    by_id = load_targets(DEFAULT_TARGETS).by_id()
    four = [t for t in TRUST_NAMES if t != "BHRUT"]
    assert pattern_status(by_id["SASH.cqc.2021"], 0.25, TRUST_NAMES) == "fitted"
    assert pattern_status(by_id["BHRUT.cqc.2020"], 0.25, four) == "predicted"
    assert pattern_status(by_id["SASH.l4l_participants_2018_11"], 0.25, TRUST_NAMES) == "checked"
    assert pattern_status(by_id["SASH.survey.dyad_reciprocity.highest"], 0.25, TRUST_NAMES) == "checked"
    assert pattern_status(by_id["SASH.survey.dyad_reciprocity.highest"], 1.0, TRUST_NAMES) == "fitted"
    assert pattern_status(by_id["all.lead_time_reduction"], 0.25, four) == "fitted"


def test_sbc_pseudo_observations_and_ranks():
    targets = load_targets(DEFAULT_TARGETS)
    summary = {"l4l_participants_2018_12": 50.0, "l4l_complete_2021_03": 10.0, "rpiws_2019_07": 4.0,
               "lead_time_baseline_hours": 200.0, "lead_time_post_hours": 50.0, "lead_time_reduction": 0.75,
               "value_stream_selection": "bottom_up", "cqc": {"2014": "good"}}
    content = pseudo_targets(targets, {"SASH": summary})
    rows = {f"{r['trust']}.{r['statistic']}": r for r in content["targets"]}
    assert rows["SASH.rpiws_2019_07"]["observed"] == 4.0 and rows["SASH.cqc.2014"]["observed"] == "good"
    assert rows["SASH.value_stream_selection"]["observed"] == "bottom_up"
    assert rows["all.lead_time_reduction"]["pooled"] == {"SASH": [200.0, 50.0]}
    assert "SASH.cqc.2019" not in rows and "SASH.l4l_participants_2018_11" not in rows   # unreached; checked only
    assert all(r["role"] == "fitted" for r in rows.values())
    assert rank_of(0.5, np.array([0.1, 0.2, 0.9]), np.random.default_rng(0)) == 2
    assert draw_truth(PRIORS, 3, 0) == draw_truth(PRIORS, 3, 0) != draw_truth(PRIORS, 3, 1)
    assert 1.0 <= draw_truth(PRIORS, 3, 0)["b"] <= 100.0


@pytest.fixture(scope="module")
def sbc_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("sbc")
    options = dict(parameters=["rpiw_effect", "dropout_per_module"], trusts=["SASH"], scale=SCALE, population=10,
                   replicates=1, rules=StoppingRules(generations=1), posterior_draws=20, seed=4, end=END, workers=1,
                   results_root=root)
    folder = run_sbc("sbc", draws=2, **options)
    return folder, options


def test_sbc_at_tiny_size_records_ranks_and_resumes(sbc_folder, capsys):
    folder, options = sbc_folder
    ranks = pd.read_csv(folder / "ranks.csv")
    assert sorted(ranks["k"].unique()) == [0, 1] and set(ranks["parameter"]) == {"rpiw_effect", "dropout_per_module"}
    assert ranks["rank"].between(0, 20).all()
    truth = json.loads((folder / "truth" / "k001.json").read_text())
    assert ranks.query("k == 1 and parameter == 'rpiw_effect'")["truth"].iloc[0] == pytest.approx(truth["rpiw_effect"])
    assert (folder / "sbc_ranks.png").stat().st_size > 1000 and "uniform" in (folder / "sbc.md").read_text()
    assert json.loads((folder / "runs" / "k000" / "setup.json").read_text())["finished"]
    assert ranks["commit"].map(lambda c: isinstance(c, str) and len(c) >= 7).all()   # which code made each draw
    before = (folder / "runs" / "k000" / "abc.db").stat().st_mtime
    ranks.assign(commit="0" * 40).to_csv(folder / "ranks.csv", index=False)            # as if made by other code
    run_sbc("sbc", draws=3, **options)                        # one more draw; the first two are not redone
    assert "2 finished draw(s) (0, 1) were made by other code" in capsys.readouterr().err
    ranks = pd.read_csv(folder / "ranks.csv")
    assert sorted(ranks["k"].unique()) == [0, 1, 2] and len(ranks) == 6
    assert (folder / "runs" / "k000" / "abc.db").stat().st_mtime == before
    with pytest.raises(InputError, match="other options"):
        run_sbc("sbc", draws=3, **{**options, "scale": 0.1})
    table = sbc_table(ranks)
    assert list(table["draws"]) == [3, 3]


def test_report_sections_for_sbc_and_validate(sbc_folder, tmp_path):
    folder, _ = sbc_folder
    lines = "\n".join(sbc_section(folder, tmp_path))
    assert "## Simulation-based calibration of the pipeline" in lines and (tmp_path / "sbc_ranks.png").is_file()
    assert "only gross miscalibration" in lines              # 3 draws: it says how little it can show
    validate = tmp_path / "validate"
    validate.mkdir()
    pd.DataFrame([{"claim": "cultural_work", "part": "", "outcome": "quality", "effect": -2.3, "interval_low": -2.4,
                   "interval_high": -2.2, "pairs": 10, "status": "pass"},
                  {"claim": "stable_ceo", "part": "", "outcome": "quality", "effect": 0.1, "interval_low": -0.1,
                   "interval_high": 0.3, "pairs": 10, "status": "fail"}]).to_csv(validate / "validate.csv", index=False)
    (validate / "validate.json").write_text(json.dumps({"posterior": "calibration/posterior_main.csv"}))

    class _Posterior:
        path = Path("calibration/posterior_main.csv")

    text = "\n".join(validate_section(validate, _Posterior()))
    assert "1 pass, 1 fail" in text and "[-0.1, 0.3]" in text and "**not**" not in text
    with pytest.raises(InputError, match="no validate.csv"):
        validate_section(tmp_path, _Posterior())


def test_every_leave_one_trust_out_in_turn_skips_the_finished(tmp_path):
    observed = {"SASH": 30.0, "SATH": 40.0}
    targets = tmp_path / "targets.yaml"
    targets.write_text(yaml.safe_dump({"targets": [
        {"trust": t, "statistic": "l4l_participants_2018_12", "kind": "count", "observed": v, "source": "test",
         "weight": 1.0, "role": "fitted"} for t, v in observed.items()]}))
    priors = tmp_path / "priors.yaml"
    priors.write_text(yaml.safe_dump({"shared": {"dropout_per_module": {"low": 0.0, "high": 0.3, "why": "test"}}}))
    command = [sys.executable, "-m", "sim.cli", "calibrate", "--leave-out", "all", "--trusts", "SASH,SATH",
               "--targets", str(targets), "--priors", str(priors), "--scale", str(SCALE), "--population", "10",
               "--generations", "1", "--end", "2016-12-31", "--workers", "1",     # the December 2018 count is
               "--results", str(tmp_path / "results"), "--no-report"]              # read in the last week run
    first = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    for trust in TRUST_NAMES:
        manifest = json.loads((tmp_path / "results" / f"loto_{trust}" / f"posterior_loto_{trust}.manifest.json").read_text())
        assert manifest["leave_out"] == trust and trust not in manifest["trusts_calibrated"]
        assert (tmp_path / "results" / f"loto_{trust}" / "generations.csv").is_file()
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("finished earlier; skipped") == 5
