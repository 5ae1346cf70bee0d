"""Bad input to `orgsim calibrate` and `orgsim report`: one clear message, non-zero exit, no traceback."""

import subprocess
import sys

import pytest
import yaml

from sim.cli import main


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_unknown_leave_out_trust_exits_2_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sim.cli", "calibrate", "--leave-out", "XYZ", "--generations", "1",
                             "--results", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--leave-out: unknown trust 'XYZ'; allowed: SASH, LTHT, UHCW, SATH, BHRUT" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_scheduler_is_a_clear_error(capsys, tmp_path):
    code, err = run_cli(capsys, "calibrate", "--scheduler", "tcp://127.0.0.1:9", "--generations", "1",
                        "--results", str(tmp_path), "--posterior-dir", str(tmp_path))
    assert code == 2
    assert "--scheduler: cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in err
    assert not (tmp_path / "main" / "abc.db").exists()


def test_prior_outside_the_allowed_range(capsys, tmp_path):
    priors = tmp_path / "priors.yaml"
    priors.write_text(yaml.safe_dump({"shared": {"rpiw_effect": {"low": 0.0, "high": 1.0}}}))
    code, err = run_cli(capsys, "calibrate", "--priors", str(priors), "--generations", "1",
                        "--results", str(tmp_path))
    assert code == 2
    assert f"{priors}: field 'shared.rpiw_effect': prior range [0.0, 1.0] lies outside" in err


def test_malformed_targets(capsys, tmp_path):
    targets = tmp_path / "targets.yaml"
    targets.write_text("targets:\n  - {trust: SASH, statistic: rpiws_2019_07, kind: count, observed: -3, "
                       "source: x, weight: 1, role: fitted}\n")
    code, err = run_cli(capsys, "calibrate", "--targets", str(targets), "--generations", "1",
                        "--results", str(tmp_path))
    assert code == 2
    assert str(targets) in err and "field 'targets.0'" in err


@pytest.mark.parametrize("argv, expected", [
    (["calibrate", "--resume", "--name", "never-ran"], "--resume: no calibration named 'never-ran'"),
    (["calibrate"], "give a stopping rule"),
    (["calibrate", "--generations", "1", "--scale", "2"], "--scale: 2.0 is not allowed"),
    (["calibrate", "--generations", "1", "--trusts", "SASH,Leeds"], "--trusts: unknown trust(s) Leeds"),
    (["calibrate", "--generations", "1", "--fit", "l4l,staffing"], "--fit: unknown family staffing; allowed: cqc, l4l"),
    (["report", "nowhere/posterior_x.csv"], "nowhere/posterior_x.csv: posterior file not found"),
])
def test_other_bad_input(capsys, tmp_path, argv, expected):
    code, err = run_cli(capsys, *argv, *(["--results", str(tmp_path)] if argv[0] == "calibrate" else []))
    assert code == 2
    assert expected in err


def test_posterior_with_columns_of_another_model_version(capsys, tmp_path):
    posterior = tmp_path / "posterior_old.csv"
    posterior.write_text("rpiw_effect,old_parameter,weight\n0.5,1.0,1.0\n")
    code, err = run_cli(capsys, "report", str(posterior), "--out", str(tmp_path / "report"))
    assert code == 2
    assert "old_parameter" in err and "recalibrate" in err


def test_pyabc_s_warnings_reach_the_user_beside_its_progress_lines():
    import logging

    from sim.calibration.smc import _ProgressFilter

    def record(level, message):
        return logging.LogRecord("ABC.Inference", level, __file__, 1, message, None, None)

    keep = _ProgressFilter().filter
    assert keep(record(logging.WARNING, "Unusually many (model, parameter) samples have prior density zero."))
    assert keep(record(logging.INFO, "t: 1, eps: 4.5e+01."))
    assert not keep(record(logging.INFO, "Timing t=0 [s]: total=3.39"))
