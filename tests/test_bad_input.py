"""Every class of bad input found by trying 188 malformed inputs (issue 15) ends the same way: one
message naming the file or option, the field and what is allowed, exit status 2, no traceback, and
nothing written.

Each case runs the real command line (``sim.cli.main``, what the ``orgsim`` entry point calls) in an
empty working folder, with its input files in ``in/``; a few run as a child process as well, for
the real exit status and stderr.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sim.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = ["--scale", "0.02", "--end", "2015-08-01"]
RUN = ["run", "SATH", *TINY, "--no-plots"]
CALIBRATE = ["calibrate", "--generations", "1", "--population", "10", "--scale", "0.02", "--workers", "1",
             "--no-report", "--results", "{tmp}/cal", "--posterior-dir", "{tmp}/post"]
COMPARE = ["compare", "SATH", "sath_stable_ceo", "--replicates", "1", "--no-progress", *TINY]
LATIN1 = b"# caf\xe9 (Latin-1, not UTF-8)\n"


def experiment(**fields) -> str:
    data = {"name": "tiny", "scenarios": ["SATH"], "scale": 0.02, "end": "2015-08-01",
            "outputs": {"final": ["quality_final"]}, **fields}
    return yaml.safe_dump(data, sort_keys=False)


def posterior(change=None, rows=3) -> str:
    """The first rows of the shipped posterior, with ``change(frame)`` applied."""
    frame = pd.read_csv(REPO / "calibration" / "posterior_main.csv").head(rows)
    if change:
        frame = change(frame)
    return frame.to_csv(index=False)


def cell(column, row, value):
    def change(frame):
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame
    return change


TARGET = "{trust: SATH, statistic: staff, kind: count, observed: 100, source: Table 5.1, weight: 1}"
TARGETS = f"targets:\n  - {TARGET}\n"
PRIORS = "shared:\n  rpiw_effect: {low: 0.3, high: 1.0}\n"
SOBOL = {"kind": "sobol", "samples": 4}
TWO_PARAMETERS = {"rpiw_effect": {}, "relapse_rate": {}}


@dataclass
class Case:
    id: str
    argv: list[str]
    expect: list[str]                  # in the message
    files: dict[str, str | bytes] = field(default_factory=dict)   # in/<name>; a name ending in / is a folder
    absent: list[str] = field(default_factory=list)               # not in the message


CASES = [
    # -- tracebacks before ------------------------------------------------------------------------
    Case("not_utf8_scenario", ["run", "{in}/s.yaml", *TINY, "--out", "{out}"], ["s.yaml", "UTF-8"],
         {"s.yaml": LATIN1 + b"base: SATH\n"}),
    Case("not_utf8_parameters", [*RUN, "--params", "{in}/p.yaml", "--out", "{out}"], ["p.yaml", "UTF-8"],
         {"p.yaml": LATIN1 + b"turnover_rate: 0.1\n"}),
    Case("not_utf8_experiment", ["sweep", "{in}/e.yaml", "--out", "{out}"], ["e.yaml", "UTF-8"],
         {"e.yaml": LATIN1 + experiment().encode()}),
    Case("not_utf8_targets", [*CALIBRATE, "--targets", "{in}/t.yaml"], ["t.yaml", "UTF-8"],
         {"t.yaml": LATIN1 + TARGETS.encode()}),
    Case("not_utf8_priors", [*CALIBRATE, "--priors", "{in}/pr.yaml"], ["pr.yaml", "UTF-8"],
         {"pr.yaml": LATIN1 + PRIORS.encode()}),
    Case("not_utf8_posterior", [*RUN, "--posterior", "{in}/post.csv", "--out", "{out}"], ["post.csv"],
         {"post.csv": LATIN1 + posterior().encode()}),
    Case("negative_seed_run", [*RUN, "--seed", "-1", "--out", "{out}"], ["--seed", "-1", "0 or more"]),
    Case("negative_seed_compare", [*COMPARE, "--seed", "-5", "--out", "{out}"], ["--seed", "0 or more"]),
    Case("negative_seed_calibrate", [*CALIBRATE, "--seed", "-2"], ["--seed", "0 or more"]),
    Case("negative_seed_report", ["report", "{repo}/calibration/posterior_main.csv", "--seed", "-1", "--out", "{out}"],
         ["--seed", "0 or more"]),
    Case("negative_seed_experiment", ["sweep", "{in}/e.yaml", "--out", "{out}"], ["e.yaml", "seed"],
         {"e.yaml": experiment(seed=-1)}),
    Case("negative_design_seed", ["sweep", "{in}/e.yaml", "--out", "{out}"], ["e.yaml", "design.seed"],
         {"e.yaml": experiment(parameters=TWO_PARAMETERS, design={**SOBOL, "seed": -3})}),
    Case("out_is_current_folder", [*RUN, "--out", "."], ["--out", "current folder"]),
    Case("out_is_parent_folder", [*RUN, "--out", ".."], ["--out", "current folder"]),
    Case("out_is_a_file_run", [*RUN, "--out", "{in}/a_file"], ["--out", "a_file", "not a folder"], {"a_file": "x"}),
    Case("out_is_a_file_sweep", ["sweep", "{in}/e.yaml", "--out", "{in}/a_file"], ["a_file", "not a folder"],
         {"a_file": "x", "e.yaml": experiment()}),
    Case("out_is_a_file_compare", [*COMPARE, "--out", "{in}/a_file"], ["a_file", "not a folder"], {"a_file": "x"}),
    Case("out_is_a_file_posterior", [*RUN, "--posterior", "{in}/post.csv", "--out", "{in}/a_file"],
         ["a_file", "not a folder"], {"a_file": "x", "post.csv": posterior()}),
    Case("out_is_a_file_report", ["report", "{in}/post.csv", "--out", "{in}/a_file"], ["a_file", "not a folder"],
         {"a_file": "x", "post.csv": posterior()}),
    Case("out_under_a_file", [*RUN, "--out", "{in}/a_file/run"], ["--out", "a_file/run", "a_file is a file"],
         {"a_file": "x"}),
    Case("out_where_nobody_writes", [*RUN, "--out", "{read_only}/run"], ["--out", "/run", "cannot create"]),
    Case("out_where_nobody_writes_sweep", ["sweep", "{in}/e.yaml", "--out", "{read_only}/sweep"],
         ["/sweep", "cannot create"], {"e.yaml": experiment()}),
    Case("resamples_zero", ["sensitivity", "{in}/e.yaml", "--resamples", "0", "--out", "{out}"], ["--resamples"],
         {"e.yaml": experiment(parameters=TWO_PARAMETERS, design=SOBOL)}),
    Case("leave_out_the_only_trust", [*CALIBRATE, "--trusts", "SATH", "--leave-out", "SATH"],
         ["--leave-out", "SATH", "--trusts"]),
    Case("scenario_name_with_slash", ["run", "{in}/s.yaml", *TINY, "--out", "{out}"], ["s.yaml", "name", "a/b"],
         {"s.yaml": "base: SATH\nname: a/b\n"}),
    # -- accepted silently before -----------------------------------------------------------------
    Case("staff_true", ["run", "{in}/s.yaml", *TINY, "--out", "{out}"], ["s.yaml", "staff", "true"],
         {"s.yaml": "base: SATH\nstaff: true\n"}),
    Case("replicates_true", ["sweep", "{in}/e.yaml", "--out", "{out}"], ["e.yaml", "replicates"],
         {"e.yaml": experiment(replicates=True)}),
    Case("duplicate_key_scenario", ["run", "{in}/s.yaml", *TINY, "--out", "{out}"],
         ["s.yaml", "duplicate key 'staff' on line 3"], {"s.yaml": "base: SATH\nstaff: 100\nstaff: 200\n"}),
    Case("duplicate_key_nested_scenario", ["run", "{in}/s.yaml", *TINY, "--out", "{out}"],
         ["s.yaml", "duplicate", "kpo_staff"], {"s.yaml": "base: SATH\nprogramme:\n  kpo_staff: 3\n  kpo_staff: 4\n"}),
    Case("duplicate_key_parameters", [*RUN, "--params", "{in}/p.yaml", "--out", "{out}"],
         ["p.yaml", "duplicate", "turnover_rate"], {"p.yaml": "turnover_rate: 0.1\nturnover_rate: 0.2\n"}),
    Case("duplicate_key_parameters_json", [*RUN, "--params", "{in}/p.json", "--out", "{out}"],
         ["p.json", "duplicate", "turnover_rate"], {"p.json": '{"turnover_rate": 0.1, "turnover_rate": 0.2}'}),
    Case("duplicate_key_experiment", ["sweep", "{in}/e.yaml", "--out", "{out}"], ["e.yaml", "duplicate", "replicates"],
         {"e.yaml": experiment() + "replicates: 2\nreplicates: 3\n"}),
    Case("duplicate_key_targets", [*CALIBRATE, "--targets", "{in}/t.yaml"], ["t.yaml", "duplicate", "weight"],
         {"t.yaml": TARGETS.replace("weight: 1}", "weight: 1, weight: 2}")}),
    Case("duplicate_key_priors", [*CALIBRATE, "--priors", "{in}/pr.yaml"], ["pr.yaml", "duplicate", "rpiw_effect"],
         {"pr.yaml": PRIORS + "  rpiw_effect: {low: 0.4, high: 0.9}\n"}),
    Case("covid_before_the_run", ["run", "{in}/s.yaml", *TINY, "--out", "{out}"], ["s.yaml", "covid_start", "1995"],
         {"s.yaml": "base: SATH\ncovid_start: 1995\n"}),
    Case("programme_change_after_the_run", ["run", "{in}/s.yaml", *TINY, "--out", "{out}"],
         ["s.yaml", "programme.changes[0]", "2030"],
         {"s.yaml": "base: SATH\nprogramme:\n  changes: [{date: 2030, rpiws_per_year: 1}]\n"}),
    Case("ceo_change_after_the_run", ["run", "{in}/s.yaml", *TINY, "--out", "{out}"],
         ["s.yaml", "leadership.changes[0]"], {"s.yaml": "base: SATH\nleadership:\n  changes: [{date: 2030, kind: interim}]\n"}),
    Case("ceo_joins_l4l_before_the_run", ["run", "{in}/s.yaml", *TINY, "--out", "{out}"],
         ["s.yaml", "leadership.ceo_joins_l4l"], {"s.yaml": "base: SATH\nleadership:\n  ceo_joins_l4l: 2001\n"}),
    Case("episode_outside_the_run", ["run", "{in}/s.yaml", *TINY, "--out", "{out}"], ["s.yaml", "regulation.episodes[0]"],
         {"s.yaml": "base: SATH\nregulation:\n  episodes: [{start: 2030, end: 2031, kind: regulatory_action}]\n"}),
    Case("values_work_outside_the_run", ["run", "{in}/s.yaml", *TINY, "--out", "{out}"],
         ["s.yaml", "culture.values_work_during"],
         {"s.yaml": "base: SATH\nculture:\n  values_work_during: {start: 2001, end: 2002}\n"}),
    Case("end_before_start_run", ["run", "SATH", "--scale", "0.02", "--end", "2013-06-01", "--out", "{out}"],
         ["--end", "2013-06-01", "2013-07-01"]),
    Case("end_after_scenario_end_run", ["run", "SATH", "--scale", "0.02", "--end", "2022-01-01", "--out", "{out}"],
         ["--end", "2022-01-01", "2021-03-31"]),
    Case("end_before_start_compare", [*COMPARE, "--end", "2013-01-01", "--out", "{out}"], ["--end", "2013-01-01"]),
    Case("end_before_start_experiment", ["sweep", "{in}/e.yaml", "--out", "{out}"], ["e.yaml", "end", "2013-01-01"],
         {"e.yaml": experiment(end="2013-01-01")}),
    Case("end_after_scenario_end_experiment", ["sweep", "{in}/e.yaml", "--out", "{out}"], ["e.yaml", "end", "2030"],
         {"e.yaml": experiment(end="2030-01-01")}),
    Case("end_before_start_calibrate", [*CALIBRATE, "--end", "2013-01-01"], ["--end", "2013-01-01"]),
    Case("end_before_start_posterior", ["run", "--all", "--posterior", "{in}/post.csv", "--scale", "0.02",
                                        "--end", "2013-01-01", "--out", "{out}"], ["--end"], {"post.csv": posterior()}),
    Case("truncnorm_mean_outside_range", ["sweep", "{in}/e.yaml", "--out", "{out}"],
         ["e.yaml", "parameters.rpiw_effect", "mean"],
         {"e.yaml": experiment(design={"kind": "latin_hypercube", "samples": 4}, parameters={
             "rpiw_effect": {"low": 0.4, "high": 0.6, "distribution": "truncnorm", "mean": 0.9, "sd": 0.1}})}),
    Case("workers_negative_run", [*RUN, "--workers", "-3", "--out", "{out}"], ["--workers", "-3"]),
    Case("workers_negative_sweep", ["sweep", "{in}/e.yaml", "--workers", "-3", "--out", "{out}"], ["--workers"],
         {"e.yaml": experiment()}),
    Case("parameter_with_unknown_nested_key", [*RUN, "--params", "{in}/p.yaml", "--out", "{out}"],
         ["p.yaml", "turnover_rate", "colour"], {"p.yaml": "turnover_rate: {value: 0.1, colour: red}\n"}),
    Case("posterior_column_not_a_scenario_field", [*RUN, "--posterior", "{in}/post.csv", "--out", "{out}"],
         ["post.csv", "SATH.programme.colour"], {"post.csv": posterior(lambda f: f.assign(**{"SATH.programme.colour": 1}))},
         absent=["SATH.yaml"]),
    Case("out_folder_of_other_files", [*RUN, "--out", "{in}/mine"], ["--out", "mine", "notes.txt"],
         {"mine/": "", "mine/notes.txt": "my notes"}),
    Case("out_run_folder_with_other_files", [*RUN, "--out", "{in}/old_run"], ["--out", "old_run", "notes.txt"],
         {"old_run/": "", "old_run/manifest.json": '{"package": "orgsim"}', "old_run/notes.txt": "my notes"}),
    Case("sweep_into_a_folder_of_other_files", ["sweep", "{in}/e.yaml", "--out", "{in}/mine"], ["mine", "manifest.json"],
         {"e.yaml": experiment(), "mine/": "", "mine/notes.txt": "my notes"}),
    # -- wrong messages before --------------------------------------------------------------------
    Case("experiment_override_error", ["sweep", "{in}/e.yaml", "--out", "{out}"],
         ["e.yaml", "scenario_factors.ceo.coup.leadership.changes.0.kind", "'permanent'"],
         {"e.yaml": experiment(scenario_factors={"ceo": {"coup": {"leadership": {"changes": [
             {"date": "2018-01-01", "kind": "coup"}]}}}})}, absent=["SATH.yaml"]),
    Case("posterior_text_value_run", [*RUN, "--posterior", "{in}/post.csv", "--out", "{out}"],
         ["post.csv", "row 3", "line 4", "rpiw_effect", "'abc'"], {"post.csv": posterior(cell("rpiw_effect", 2, "abc"))}),
    Case("posterior_text_value_compare", [*COMPARE, "--posterior", "{in}/post.csv", "--out", "{out}"],
         ["post.csv", "row 3", "line 4", "rpiw_effect", "'abc'"], {"post.csv": posterior(cell("rpiw_effect", 2, "abc"))}),
    Case("posterior_empty_value", [*RUN, "--posterior", "{in}/post.csv", "--out", "{out}"],
         ["post.csv", "row 2", "rpiw_effect", "empty"], {"post.csv": posterior(cell("rpiw_effect", 1, None))}),
    Case("posterior_trust_value_out_of_range", [*RUN, "--posterior", "{in}/post.csv", "--out", "{out}"],
         ["post.csv", "row 3", "SATH.programme.l4l_cohorts_per_year", "500"],
         {"post.csv": posterior(cell("SATH.programme.l4l_cohorts_per_year", 2, 500.0))}, absent=["SATH.yaml"]),
    Case("posterior_trust_value_out_of_range_compare", [*COMPARE, "--posterior", "{in}/post.csv", "--out", "{out}"],
         ["post.csv", "row 3", "SATH.programme.l4l_cohorts_per_year", "500"],
         {"post.csv": posterior(cell("SATH.programme.l4l_cohorts_per_year", 2, 500.0))}, absent=["SATH.yaml"]),
    Case("posterior_with_end_before_the_targets", ["run", "--all", "--posterior", "{in}/post.csv", "--draws", "1",
                                                   "--scale", "0.02", "--end", "2016-01-01", "--out", "{out}"],
         ["--end 2016-01-01", "cqc"], {"post.csv": posterior()}, absent=["targets file"]),
    Case("calibrate_with_end_before_the_targets", [*CALIBRATE, "--end", "2016-01-01"], ["--end 2016-01-01", "cqc"],
         absent=["targets file"]),
    # -- names used as paths ----------------------------------------------------------------------
    Case("experiment_name_climbs_out", ["sweep", "{in}/e.yaml"], ["e.yaml", "name"],
         {"e.yaml": experiment(name="../../escaped")}),     # results/../../escaped: beside cwd/
    Case("experiment_name_absolute", ["sweep", "{in}/e.yaml"], ["e.yaml", "name"],
         {"e.yaml": experiment(name="{tmp}/escaped")}),
    Case("calibration_name_climbs_out", [*CALIBRATE, "--name", "../escaped"], ["--name"]),
]


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(path.relative_to(root)): None if path.is_dir() else path.read_bytes() for path in root.rglob("*")}


def prepare(case: Case, tmp_path: Path) -> tuple[list[str], Path]:
    inputs, cwd = tmp_path / "in", tmp_path / "cwd"
    inputs.mkdir()
    cwd.mkdir()
    for name, content in case.files.items():
        path = inputs / name
        if name.endswith("/"):
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.replace("{tmp}", str(tmp_path)))
    places = {"in": str(inputs), "out": str(tmp_path / "out"), "tmp": str(tmp_path), "repo": str(REPO)}
    if any("{read_only}" in arg for arg in case.argv):
        places["read_only"] = read_only_folder(tmp_path)
    return [arg.format(**places) for arg in case.argv], cwd


def read_only_folder(tmp_path: Path) -> str:
    """A folder nobody may write in: a read-only one, or for root (who may write anywhere) sysfs."""
    if os.geteuid() == 0:
        if not os.path.ismount("/sys"):
            pytest.skip("running as root without /sys: no folder root cannot write")
        return "/sys/orgsim-test"
    folder = tmp_path / "read_only"
    folder.mkdir(mode=0o555)
    return str(folder)


def orgsim(argv: list[str], cwd: Path) -> tuple[int, str]:
    """``orgsim ARGV`` in this process: exit status and stderr (argparse exits by SystemExit)."""
    stderr = io.StringIO()
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(argv)
            except SystemExit as exit_:
                code = exit_.code
    finally:
        os.chdir(previous)
    return code, stderr.getvalue()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error:" in line]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gets_one_clear_message_and_nothing_is_written(case, tmp_path):
    argv, cwd = prepare(case, tmp_path)
    before = snapshot(tmp_path)
    code, stderr = orgsim(argv, cwd)
    assert code == 2, stderr
    errors = error_lines(stderr)
    assert len(errors) == 1, stderr
    message = errors[0]
    assert message.startswith("orgsim"), message
    for expected in case.expect:
        assert expected in message, f"{expected!r} not in {message!r}"
    for unexpected in case.absent:
        assert unexpected not in message, f"{unexpected!r} in {message!r}"
    assert snapshot(tmp_path) == before, "something was written"


@pytest.mark.parametrize("case_id", ["not_utf8_scenario", "negative_seed_run", "out_is_current_folder",
                                     "duplicate_key_experiment", "resamples_zero"])
def test_the_entry_point_exits_2_without_a_traceback(case_id, tmp_path):
    case = next(case for case in CASES if case.id == case_id)
    argv, cwd = prepare(case, tmp_path)
    before = snapshot(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "sim.cli", *argv], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(error_lines(proc.stderr)) == 1, proc.stderr
    assert snapshot(tmp_path) == before
