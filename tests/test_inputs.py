"""Bad scenario and parameter files give one clear message (file, field, what is allowed), exit 2."""

import subprocess
import sys

import pytest

from sim.cli import main
from sim.errors import InputError
from sim.params import load_params
from sim.scenario import load_scenario

VALID_BASE = "base: SASH\n"


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, field, allowed", [
    (VALID_BASE + "colour: blue\n", "colour", "unknown field"),
    (VALID_BASE + "staff: many\n", "staff", "integer"),
    (VALID_BASE + "staff: -5\n", "staff", "greater than 0"),
    (VALID_BASE + "start: 1850-01-01\n", "start", "outside"),
    (VALID_BASE + "covid_start: 2020-13-45\n", "covid_start", "not a date"),
    (VALID_BASE + "regulation: {style: punitive}\n", "regulation.style", "'relational' or 'traditional'"),
    (VALID_BASE + "inspections: [2030-01-01]\n", "inspections", "between start"),
    (VALID_BASE + "leadership: {changes: [{date: 2018-01-01, kind: coup}]}\n", "leadership.changes.0.kind", "'permanent'"),
    (VALID_BASE + "regulation: {episodes: [{start: 2016-01-01, end: 2017-01-01, kind: scolding}]}\n",
     "regulation.episodes.0.kind", "'regulatory_action'"),
    ("base: NOWHERE\n", "base", "not found"),
    (VALID_BASE + "staff: [1\n", "YAML syntax error", ""),
])
def test_bad_scenario_is_rejected_with_file_and_field(tmp_path, text, field, allowed):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as err:
        load_scenario(str(path))
    message = str(err.value)
    assert str(path) in message and field in message and allowed in message


def test_base_and_overrides_merge(tmp_path):
    path = write(tmp_path, "base: SATH\nname: SATH_stable\nleadership: {changes: []}\n")
    scenario = load_scenario(str(path))
    assert scenario.leadership.changes == [] and scenario.staff == load_scenario("SATH").staff
    assert scenario.leadership.ceo_joins_l4l is not None   # untouched nested field kept


@pytest.mark.parametrize("text, expected", [
    ("nonsense_rate: 1\n", "unknown parameter 'nonsense_rate'"),
    ("turnover_rate: 0.9\n", "outside its allowed range"),
    ("turnover_rate: fast\n", "must be a number"),
    ("turnover_rate: [0.1\n", "YAML syntax error"),
])
def test_bad_parameter_file_is_rejected(tmp_path, text, expected):
    path = write(tmp_path, text, "p.yaml")
    with pytest.raises(InputError, match=expected.replace("[", r"\[").replace("(", r"\(")):
        load_params(path)


def test_cli_bad_input_exits_2_without_traceback(tmp_path):
    bad = write(tmp_path, VALID_BASE + "staff: -1\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "run", str(bad), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "staff" in proc.stderr and str(bad) in proc.stderr
    assert not out.exists()


def test_unknown_scenario_name(capsys):
    assert main(["run", "ATLANTIS", "--no-plots"]) == 2
    assert "scenario 'ATLANTIS' not found" in capsys.readouterr().err
