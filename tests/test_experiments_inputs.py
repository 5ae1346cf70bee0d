"""Bad input is refused before any run starts, with a message naming the file and field, exit 2."""

import pandas as pd
import pytest

from sim.errors import InputError
from sim.experiments.compare import check_compare_outputs, compare_specs, load_parameter_sets
from sim.experiments.schema import load_experiment
from test_experiments_helpers import run_cli, run_cli_process, write_experiment


def refused(tmp_path, **fields) -> str:
    path = write_experiment(tmp_path, **fields)
    with pytest.raises(InputError) as error:
        load_experiment(str(path))
    assert str(path) in str(error.value)
    return str(error.value)


def test_unknown_parameter_is_named(tmp_path):
    message = refused(tmp_path, parameters={"no_such_parameter": {"low": 0, "high": 1}})
    assert "no_such_parameter" in message and "allowed" in message


def test_unknown_output_is_named(tmp_path):
    message = refused(tmp_path, outputs={"final": ["quality_final", "happiness"]})
    assert "happiness" in message and "outputs.final" in message


def test_unknown_series_output_is_named(tmp_path):
    message = refused(tmp_path, outputs={"final": ["quality_final"], "series": ["nonsense"]})
    assert "nonsense" in message and "outputs.series" in message


def test_empty_range_is_refused(tmp_path):
    message = refused(tmp_path, parameters={"rpiw_effect": {"low": 0.5, "high": 0.5}},
                      design={"kind": "latin_hypercube", "samples": 4})
    assert "parameters.rpiw_effect" in message and "empty range" in message


def test_empty_values_are_refused(tmp_path):
    message = refused(tmp_path, parameters={"rpiw_effect": {"values": []}})
    assert "empty list" in message


def test_range_outside_documented_range_is_refused(tmp_path):
    message = refused(tmp_path, parameters={"rpiw_effect": {"low": 0.0, "high": 5.0}},
                      design={"kind": "latin_hypercube", "samples": 4})
    assert "outside the allowed range" in message


def test_sobol_n_must_be_a_power_of_two(tmp_path):
    message = refused(tmp_path, parameters={"rpiw_effect": {}, "relapse_rate": {}},
                      design={"kind": "sobol", "samples": 48})
    assert "power of two" in message and "design.samples" in message


def test_sensitivity_of_a_text_rating_is_refused(tmp_path):
    message = refused(tmp_path, parameters={"rpiw_effect": {}, "relapse_rate": {}},
                      design={"kind": "morris", "samples": 4}, outputs={"final": ["cqc_latest"]})
    assert "cqc_latest_score" in message


def test_unknown_field_is_named(tmp_path):
    message = refused(tmp_path, replicatez=3)
    assert "replicatez" in message


def test_cli_refuses_a_design_bigger_than_max_runs_before_running(tmp_path):
    path = write_experiment(tmp_path, parameters={"rpiw_effect": {"values": [0.4, 0.6, 0.8]}}, replicates=4)
    result = run_cli_process("sweep", path, "--max-runs", 10, "--out", tmp_path / "out", "--no-progress")
    assert result.returncode == 2
    assert "needs 12 runs" in result.stderr and "--max-runs 10" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_unknown_parameter_exits_2_without_traceback(tmp_path):
    path = write_experiment(tmp_path, parameters={"bogus": {"values": [1]}})
    result = run_cli("sweep", path, "--no-progress")
    assert result.returncode == 2
    assert "bogus" in result.stderr and "Traceback" not in result.stderr


def test_cli_unknown_experiment_lists_shipped_ones(tmp_path):
    result = run_cli("sweep", "no_such_experiment")
    assert result.returncode == 2
    assert "sobol_behavioural" in result.stderr


def test_results_folder_of_another_experiment_is_refused(tmp_path):
    first = write_experiment(tmp_path, end="2015-08-01")
    assert run_cli("sweep", first, "--out", tmp_path / "out", "--no-progress").returncode == 0
    second = write_experiment(tmp_path, end="2015-09-01")
    result = run_cli("sweep", second, "--out", tmp_path / "out", "--no-progress")
    assert result.returncode == 2 and "different runs" in result.stderr


def test_posterior_with_unknown_column_names_file_and_column(tmp_path):
    path = tmp_path / "posterior.csv"
    pd.DataFrame({"rpiw_effect": [0.5], "mystery": [1.0]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"posterior\.csv.*mystery"):
        load_parameter_sets(str(path))


def test_posterior_value_out_of_range_names_row(tmp_path):
    path = tmp_path / "posterior.csv"
    pd.DataFrame({"rpiw_effect": [0.5, 7.0], "weight": [1, 1]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"row 2.*rpiw_effect"):
        load_parameter_sets(str(path))


def test_posterior_weights_are_normalised_and_missing_parameters_defaulted(tmp_path):
    path = tmp_path / "posterior.parquet"
    pd.DataFrame({"rpiw_effect": [0.5, 0.9], "weight": [1.0, 3.0]}).to_parquet(path)
    sets = load_parameter_sets(str(path))
    assert sets["weight"].tolist() == [0.25, 0.75]
    assert sets["rpiw_effect"].tolist() == [0.5, 0.9]
    assert sets["relapse_rate"].nunique() == 1


def test_compare_refuses_text_outputs():
    with pytest.raises(InputError, match="cqc_latest_score"):
        check_compare_outputs(["cqc_latest"])


def test_posterior_trust_fields_apply_under_the_variants_own_changes(tmp_path):
    path = tmp_path / "posterior.csv"
    pd.DataFrame({"rpiw_effect": [0.5], "SATH.programme.rpiws_per_year": [10.0],
                  "SATH.programme.l4l_cohorts_per_year": [3.0], "SASH.programme.rpiws_per_year": [4.0],
                  "weight": [1.0]}).to_csv(path, index=False)
    sets = load_parameter_sets(str(path))
    base, variant = compare_specs(["SATH", "sath_half_rpiw_pace"], sets, replicates=1, seed=1, scale=0.02)
    assert base.overrides == {"programme": {"rpiws_per_year": 10.0, "l4l_cohorts_per_year": 3.0}}
    # the what-if's own pace (12 a year) wins over the calibrated SATH pace; the calibrated cohorts stay
    assert variant.overrides == {"programme": {"rpiws_per_year": 12.0, "l4l_cohorts_per_year": 3.0}}
    assert base.params["rpiw_effect"] == variant.params["rpiw_effect"] == 0.5
    assert base.seed_index == variant.seed_index
