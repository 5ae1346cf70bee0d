"""Two writers, kills and crashes: a results folder has one writer at a time, a killed sweep loses
no finished run and leaves no process behind, and a run folder is never missing or half-replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from sim.errors import InputError
from sim.experiments.batch import (OutputSelection, ResultStore, build_manifest, execute_run, read_manifest, read_runs,
                                   read_series, run_batch)
from sim.runner import AtomicFolder
from test_experiments_batch import tiny_specs

REPO = Path(__file__).resolve().parents[1]

# Imported by every Python process started with this folder on PYTHONPATH (sweep and loky workers):
# appends the index of every run that a process finished to $ORGSIM_TEST_FINISHED.
COUNTING_HOOK = '''
import os
if os.environ.get("ORGSIM_TEST_FINISHED"):
    import functools
    import sim.experiments.batch as batch

    original = batch.execute_run

    @functools.wraps(original)
    def execute_run(spec, outputs):
        result = original(spec, outputs)
        with open(os.environ["ORGSIM_TEST_FINISHED"], "a") as log:
            log.write(f"{spec.run_index}\\n")
        return result

    batch.execute_run = execute_run
'''


def experiment(folder: Path, runs: int) -> Path:
    path = folder / "many.yaml"
    path.write_text(yaml.safe_dump({"name": "many", "scenarios": ["SATH"], "replicates": runs, "scale": 0.05,
                                    "end": "2015-07-01", "outputs": {"final": ["quality_final"]}}))
    return path


def start_sweep(tmp_path: Path, path: Path, out: Path, finished_log: Path, *options) -> subprocess.Popen:
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(COUNTING_HOOK)
    env = {**os.environ, "PYTHONPATH": f"{hook}{os.pathsep}{REPO}", "ORGSIM_TEST_FINISHED": str(finished_log)}
    return subprocess.Popen([sys.executable, "-m", "sim.cli", "sweep", str(path), "--out", str(out), "--no-progress",
                             *map(str, options)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def finished(log: Path) -> set[int]:
    return {int(line) for line in log.read_text().split()} if log.exists() else set()


def written(out: Path) -> set[int]:
    runs = read_runs(out) if (out / "runs").is_dir() else None
    return set() if runs is None or runs.empty else set(runs["run_index"].tolist())


def written_singly(out: Path) -> set[int]:
    """Runs written but not yet gathered into a part, from the file names alone (fast)."""
    return {int(path.stem.split("-")[1]) for path in (out / "runs").glob("run-*.json")}


def wait_for(condition, process: subprocess.Popen, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the sweep ended early: {process.communicate()}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_second_writer_is_refused_naming_the_folder_and_the_first_writers_pid(tmp_path):
    path, out = experiment(tmp_path, runs=30), tmp_path / "out"
    first = start_sweep(tmp_path, path, out, tmp_path / "first.log", "--chunk-size", 1)
    try:
        wait_for(lambda: len(written(out)) >= 1, first)
        os.kill(first.pid, signal.SIGSTOP)          # it holds the folder, mid-sweep, for as long as we like
        second = start_sweep(tmp_path, path, out, tmp_path / "second.log", "--chunk-size", 1)
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 2 and "Traceback" not in stderr, stderr
        assert f"{out} is being written by another orgsim process (pid {first.pid})" in stderr
        assert not finished(tmp_path / "second.log")  # it ran nothing
    finally:
        os.kill(first.pid, signal.SIGCONT)
    stdout, stderr = first.communicate(timeout=180)
    assert first.returncode == 0, stderr
    runs = read_runs(out)
    assert sorted(runs["run_index"]) == list(range(30))  # every run once
    assert sorted(finished(tmp_path / "first.log")) == list(range(30))

    again = start_sweep(tmp_path, path, out, tmp_path / "third.log")  # the lock went with the first writer
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0 and "0 runs computed, 30 reused" in stdout, stderr


def test_kill_9_loses_no_finished_run_and_leaves_no_process(tmp_path):
    path, out = experiment(tmp_path, runs=60), tmp_path / "out"
    first_log, resume_log = tmp_path / "first.log", tmp_path / "resume.log"
    sweep = start_sweep(tmp_path, path, out, first_log, "--workers", 2)   # default chunks of 50 runs
    try:
        wait_for(lambda: len(written_singly(out)) >= 4, sweep)
        children = psutil.Process(sweep.pid).children(recursive=True)
        # kill at a moment when no finished run is in transit from a worker to the folder (for a few
        # milliseconds after a worker finishes a run it is on its way; that window cannot be closed)
        wait_for(lambda: finished(first_log) == written_singly(out) == finished(first_log), sweep)
        os.kill(sweep.pid, signal.SIGKILL)
        finished_at_kill = finished(first_log)
        sweep.wait(timeout=10)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert len(finished_at_kill) < 60, "the sweep finished before it was killed"
    assert any("loky" in " ".join(child.cmdline()) for child in children if child.is_running())

    deadline = time.monotonic() + 5
    while (alive := [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]):
        assert time.monotonic() < deadline, f"processes of the killed sweep still running: {alive}"
        time.sleep(0.1)

    saved = written(out)
    assert finished_at_kill <= saved                    # every run finished before the kill was on disk
    resume = start_sweep(tmp_path, path, out, resume_log, "--workers", 2)
    stdout, stderr = resume.communicate(timeout=180)
    assert resume.returncode == 0, stderr
    recomputed = finished(resume_log) & finished_at_kill
    assert recomputed == set()
    assert f"{60 - len(saved)} runs computed, {len(saved)} reused" in stdout
    assert sorted(read_runs(out)["run_index"]) == list(range(60))
    assert read_manifest(out)["sessions"][-1]["status"] == "complete"


def _write_run(folder: Path, marker: str) -> None:
    (folder / "manifest.json").write_text('{"package": "orgsim", "marker": "%s"}' % marker)
    (folder / "summary.json").write_text("{}")


def test_replacing_a_run_folder_never_leaves_no_folder(tmp_path):
    out = tmp_path / "run"
    with AtomicFolder(out) as folder:
        _write_run(folder, "0")
    missing, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            if not out.is_dir():
                missing.append(time.monotonic())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for replacement in range(1, 40):
            with AtomicFolder(out) as folder:
                _write_run(folder, str(replacement))
    finally:
        stop.set()
        watcher.join()
    assert missing == []
    assert '"marker": "39"' in (out / "manifest.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]    # no partial or old folder left


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_leftovers_of_a_killed_run_are_cleaned_and_an_interrupted_replacement_undone(tmp_path):
    out = tmp_path / "run"
    # killed between the two renames of the fallback (no renameat2): the old folder aside, none in place
    interrupted = tmp_path / f"run.old-{dead_pid()}"
    interrupted.mkdir()
    _write_run(interrupted, "old")
    stale = tmp_path / f"run.partial-{dead_pid()}"
    stale.mkdir()
    (stale / "timeseries.csv").write_text("half")
    live = tmp_path / f"run.partial-{os.getppid()}"    # a running writer's folder is left alone
    live.mkdir()

    with AtomicFolder(out) as folder:
        assert '"marker": "old"' in (out / "manifest.json").read_text()   # back in place first
        _write_run(folder, "new")
    assert '"marker": "new"' in (out / "manifest.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", live.name]


def test_a_previous_run_folder_is_replaced_and_others_are_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.csv").write_text("mine")
    with pytest.raises(InputError, match=r"results\.csv"):
        AtomicFolder(out).__enter__()
    assert (out / "results.csv").read_text() == "mine" and len(list(tmp_path.iterdir())) == 1

    empty = tmp_path / "empty"
    empty.mkdir()
    with AtomicFolder(empty) as folder:
        _write_run(folder, "1")
    with AtomicFolder(empty) as folder:
        _write_run(folder, "2")
        (folder / "timeseries.csv").write_text("x")
    assert sorted(p.name for p in empty.iterdir()) == ["manifest.json", "summary.json", "timeseries.csv"]


def test_what_a_kill_leaves_half_done_is_cleared_and_each_run_kept_once(tmp_path):
    specs, out = tiny_specs(6), tmp_path / "out"
    outputs = OutputSelection(final=("quality_final",), series=("quality",))
    store = ResultStore(out)
    store.open(build_manifest(specs, outputs, None))
    for spec in specs[:3]:
        store.add(*execute_run(spec, outputs))
    singles = {path: path.read_bytes() for path in [*out.glob("runs/run-*"), *out.glob("series/run-*")]}
    store.pack()
    for path, content in singles.items():   # killed after the part landed, before the gathered files went
        path.write_bytes(content)
    row, series = execute_run(specs[3], outputs)
    series.to_parquet(out / "series" / "run-000000003.parquet")   # killed before its row was written
    (out / "runs" / "run-000000004.json.tmp").write_text("{")     # killed while writing a row
    store.close()

    result = run_batch(specs, out, outputs, progress=False)
    assert (result.done_before, result.computed) == (3, 3)
    assert result.runs["run_index"].tolist() == list(range(6))
    assert not read_series(out).duplicated(["run_index", "week"]).any()
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["part-000000.parquet", "part-000001.parquet"]
    assert sorted(p.name for p in (out / "series").iterdir()) == ["part-000000.parquet", "part-000001.parquet"]
