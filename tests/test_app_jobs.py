"""The web app's job runner and form checks, without a browser (tests/test_app_browser.py drives the pages).

Jobs are real: each runs ``orgsim compare`` in a process of its own over a few small runs."""

import json
import os
import signal
import time
import io
import zipfile

import pytest

from sim.app import jobs, levers
from sim.app.paths import PROJECT, checked_folder
from sim.errors import InputError

TINY = ["--max-sets", "2", "--replicates", "1", "--scale", "0.1", "--end", "2016-12-31", "--no-progress"]


@pytest.fixture(autouse=True)
def jobs_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("ORGSIM_APP_JOBS", str(tmp_path / "jobs"))
    return tmp_path / "jobs"


def compare_job(*extra, sets="2"):
    job = jobs.create_job("whatif", "test", output="compare", batch="compare")
    argv = ["compare", "SATH", "sath_stable_ceo", "--posterior", str(PROJECT / "calibration/posterior_main.csv"),
            *TINY, *extra, "--out", str(job.folder / "compare")]
    argv[argv.index("--max-sets") + 1] = sets
    return jobs.start_job(job, argv)


def wait(job, until=("done", "failed", "stopped"), seconds=120):
    deadline = time.time() + seconds
    while job.status not in until:
        assert time.time() < deadline, f"job still {job.status}: {job.log_tail()}"
        time.sleep(0.3)
    return job.status


def test_a_job_runs_off_the_caller_and_leaves_its_outputs_manifest_and_progress():
    job = compare_job()
    assert job.status == "running"             # start_job returns at once: the work is in another process
    assert wait(job) == "done", job.log_tail(30)
    manifest, progress = job.manifest, job.progress()
    assert manifest["returncode"] == 0 and manifest["error"] is None
    assert progress["done"] == progress["total"] == 4          # 2 sets x 1 replicate x 2 scenarios
    for name in ("compare.csv", "cqc_shares.png", "compare_series.png", "contributions.csv", "contributions.png",
                 "manifest.json"):
        assert (job.output / name).is_file(), name
    contributions = (job.output / "contributions.csv").read_text()
    assert "SATH (base)," in contributions and "sath_stable_ceo," in contributions     # one panel per arm
    archive = zipfile.ZipFile(io.BytesIO(jobs.zip_folder(job.folder)))
    assert f"{job.id}/compare/compare_series.png" in archive.namelist()
    assert not any(name.endswith(".lock") for name in archive.namelist())


def test_jobs_are_listed_from_disk_and_ids_never_become_other_paths(jobs_folder):
    job = jobs.create_job("whatif", "listed", output="compare", batch="compare")
    assert [j.id for j in jobs.list_jobs("whatif")] == [job.id]
    assert jobs.list_jobs("readiness") == []
    assert jobs.find_job(job.id).manifest["title"] == "listed"
    (jobs_folder / "not-a-job").mkdir()
    for bad in ("../x", "not-a-job", "/etc", ""):
        with pytest.raises(InputError, match="no such job"):
            jobs.find_job(bad)


def test_a_bad_command_fails_with_the_command_lines_message():
    job = jobs.create_job("whatif", "bad", output="compare", batch="compare")
    jobs.start_job(job, ["compare", "SATH", "no_such_scenario", *TINY, "--out", str(job.folder / "compare")])
    assert wait(job) == "failed"
    assert "scenario 'no_such_scenario' not found" in job.manifest["error"]
    assert job.manifest["returncode"] == 2


def test_a_killed_job_is_stopped_and_resumes_without_recomputing_its_finished_runs():
    job = compare_job(sets="12")              # 24 runs
    deadline = time.time() + 60
    while (job.progress().get("done") or 0) < 2:
        assert time.time() < deadline and job.status == "running", job.log_tail()
        time.sleep(0.2)
    os.killpg(job.manifest["pid"], signal.SIGKILL)     # as a crash or a power cut: nothing is said
    assert wait(job, until=("stopped",), seconds=10) == "stopped"
    assert job.manifest["status"] == "running"        # the manifest could not say so: the dead process tells
    jobs.start_job(job)                               # resume: the same command again
    assert wait(job) == "done", job.log_tail(30)
    sessions = json.loads((job.output / "manifest.json").read_text())["sessions"]
    assert sessions[-1]["runs_done_before"] >= 2 and sessions[-1]["status"] == "complete"
    assert job.progress()["done"] == 24


def test_stop_interrupts_like_ctrl_c_and_the_job_can_resume():
    job = compare_job(sets="12")
    while (job.progress().get("done") or 0) < 1:
        time.sleep(0.2)
    jobs.stop_job(job)
    assert wait(job) == "stopped", job.log_tail(30)
    assert "resume" in job.manifest["error"]


def test_a_stop_that_surfaces_as_another_error_still_stops_the_job(monkeypatch):
    # Ctrl-C inside compiled code (numba's cache loader, pyarrow) can come out as SystemError, not
    # KeyboardInterrupt; the job was still stopped on request and can resume, so it must not say "failed"
    def interrupted_inside_compiled_code(argv, output):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            raise SystemError("<built-in function load> returned a result with an exception set") from None

    def plain_error(argv, output):
        raise SystemError("a real failure")

    before = signal.getsignal(signal.SIGINT)
    for task, expected in ((interrupted_inside_compiled_code, "stopped"), (plain_error, "failed")):
        monkeypatch.setitem(jobs.TASKS, "whatif", task)
        job = jobs.create_job("whatif", "in process", output="compare", batch="compare")
        jobs.update_manifest(job.folder, lambda m: (m.update(status="starting", argv=["compare"]),
                                                    m["sessions"].append({"started": "now"})))
        code = jobs.run_job(job.folder)
        assert job.manifest["status"] == expected and code == (130 if expected == "stopped" else 1)
    assert signal.getsignal(signal.SIGINT) is before        # the job's handler does not outlive the job


def test_no_more_than_two_jobs_run_at_once():
    first, second = compare_job(sets="12"), compare_job(sets="12")
    try:
        with pytest.raises(InputError, match="2 jobs are running already"):
            jobs.create_job("whatif", "third", output="compare", batch="compare")
    finally:
        for job in (first, second):
            os.killpg(job.manifest["pid"], signal.SIGKILL)


def test_only_folders_under_results_calibration_and_docs_can_be_opened(tmp_path):
    assert checked_folder("calibration/report_main") == PROJECT / "calibration" / "report_main"
    for bad, why in (("../", "only folders under"), ("/etc", "give a folder under"), ("sim", "only folders under"),
                     ("calibration/../sim", "only folders under"), ("results/no-such-folder", "no such folder")):
        with pytest.raises(InputError, match=why):
            checked_folder(bad)
    link = PROJECT / "results" / "test-app-link-out"
    link.parent.mkdir(exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(tmp_path)
    try:
        with pytest.raises(InputError, match="only folders under"):
            checked_folder("results/test-app-link-out")
    finally:
        link.unlink()


def test_the_variant_names_only_the_changed_levers_and_errors_find_their_controls(tmp_path):
    from sim.scenario import load_scenario

    base = levers.lever_values(load_scenario("SATH"))
    changed = {**base, "culture": {**base["culture"], "reflective_routines": True}}
    document = levers.variant_document("SATH", "SATH", base, changed)
    assert levers.changed_groups(document) == ["culture"]
    variant = levers.write_variant(document, tmp_path / "variant.yaml")
    assert variant.culture.reflective_routines and variant.leadership == load_scenario("SATH").leadership
    bad = {**base, "leadership": {**base["leadership"], "changes": [{"date": "2030-01-01", "kind": "interim"}]}}
    with pytest.raises(InputError) as error:
        levers.write_variant(levers.variant_document("SATH", "SATH", base, bad), tmp_path / "bad.yaml")
    assert "leadership.changes[0] (2030-01-01) must lie between" in str(error.value)
    assert levers.groups_named(str(error.value)) == ["leadership"]
    assert levers.groups_named("--end: 2030-01-01 is outside the run") == ["ensemble"]


def test_the_readiness_form_is_checked_as_the_command_line_checks_a_profile(tmp_path):
    pytest.importorskip("solara")
    from sim.app import readiness

    answers, survey = readiness.example_answers("receptive_trust")
    assert readiness.check_profile(answers, survey, readiness.RUN_DEFAULTS, tmp_path / "good").is_file()
    with pytest.raises(InputError) as error:
        readiness.check_profile({**answers, "staff": "-5"}, survey, readiness.RUN_DEFAULTS, tmp_path / "bad")
    message = str(error.value)
    assert message.startswith("profile.yaml: question 'staff' (How many staff") and "200-100000" in message
    assert readiness.questions_named(message) == ["staff"]
    with pytest.raises(InputError) as error:
        readiness.check_profile(answers, b"source,target\na,b\n", readiness.RUN_DEFAULTS, tmp_path / "survey")
    assert readiness.questions_named(str(error.value)) == ["network_survey"]
