"""Long work off the page's thread: each job is an orgsim command run by a process of its own, in a folder.

    results/app/jobs/<id>/
      manifest.json   what was asked (the orgsim command line), the process running it, status, times, error
      progress.json   runs finished of the total and the phase, rewritten every second by the job's process
      log.txt         what the command printed
      <inputs>        the scenarios or profile the page wrote for it
      <output>/       the command's own results folder (with its own manifest.json)

A job's process is ``python -m sim.app.jobs <folder>``, run in the job's folder (so that a scenario name finds the
job's own ``scenarios/NAME.yaml`` first) and in a session of its own, so that it outlives a
page reload and the server itself. Pages list the jobs from disk: a reload, another browser or a new server
finds every running and finished job. A job whose process ended without finishing (killed, the machine
restarted) is ``stopped``; resuming it runs the same command again, and the batch runner
(sim/experiments/batch.py) reads back the runs already finished instead of recomputing them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sim.app.paths import PROJECT, jobs_dir
from sim.errors import InputError
from sim.runner import pid_alive

MAX_RUNNING = 2                    # the machine's two cores: a third job would only slow the others
ID_PATTERN = re.compile(r"\d{8}-\d{6}-[a-z]+-[0-9a-f]{4}")
PROGRESS_SECONDS = 1.0


@dataclass(frozen=True)
class Job:
    folder: Path

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def manifest(self) -> dict:
        return _read_json(self.folder / "manifest.json")

    @property
    def output(self) -> Path:
        return self.folder / self.manifest["output"]

    @property
    def status(self) -> str:
        """running, done, failed or stopped (a process that ended without saying so: killed, or the machine
        restarted); ``new`` before it is started."""
        manifest = self.manifest
        status = manifest.get("status", "new")
        if status == "starting" and manifest.get("pid") is None:
            return "running"                     # the server is starting its process this instant
        if status in ("starting", "running"):
            return "running" if process_alive(manifest.get("pid"), manifest.get("pid_start")) else "stopped"
        return status

    def progress(self) -> dict:
        """``done`` and ``total`` runs (total None until the batch has planned them) and the ``phase``."""
        return _read_json(self.folder / "progress.json") or {"done": 0, "total": None, "phase": "starting"}

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = (self.folder / "log.txt").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])


def create_job(kind: str, title: str, output: str, batch: str, inputs: dict | None = None) -> Job:
    """A new job folder (not started): ``output`` is the command's results folder and ``batch`` the batch
    runner's folder inside the job (whose finished runs measure progress), both relative to the job."""
    if not re.fullmatch(r"[a-z]+", kind):
        raise ValueError(f"job kind '{kind}': lower-case letters only")
    check_capacity()
    folder = jobs_dir() / f"{dt.datetime.now():%Y%m%d-%H%M%S}-{kind}-{secrets.token_hex(2)}"
    folder.mkdir(parents=True)
    _write_json(folder / "manifest.json", {
        "kind": kind, "title": title, "created": _now(), "status": "new", "output": output, "batch": batch,
        "inputs": inputs or {}, "argv": None, "pid": None, "sessions": []})
    return Job(folder)


def start_job(job: Job, argv: list[str] | None = None) -> Job:
    """Run ``orgsim <argv>`` for the job in a process of its own (``argv`` None: the job's own command again,
    to resume a stopped job). Refused while MAX_RUNNING jobs run."""
    if job.status == "running":
        raise InputError(f"job {job.id} is running already")
    check_capacity()
    if not (argv or job.manifest.get("argv")):
        raise ValueError(f"job {job.id} has no command to run")

    def starting(manifest):     # written before the process starts: it reads its command from here
        manifest.update(status="starting", argv=list(argv or manifest["argv"]), pid=None, error=None,
                        returncode=None)
        manifest["sessions"].append({"started": _now()})

    update_manifest(job.folder, starting)
    with open(job.folder / "log.txt", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "sim.app.jobs", str(job.folder)], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                   cwd=job.folder, env=_child_environment())
    threading.Thread(target=process.wait, name=f"reap-{job.id}", daemon=True).start()   # no zombie left
    update_manifest(job.folder, lambda manifest: _running(manifest, process.pid))
    return job


def _running(manifest: dict, pid: int) -> None:
    """The job's process, as whichever of the server and the job records it first (the other finds it done)."""
    manifest.update(pid=pid, pid_start=process_start(pid))
    manifest["sessions"][-1]["pid"] = pid
    if manifest["status"] == "starting":
        manifest["status"] = "running"


def update_manifest(folder: Path, change) -> dict:
    """Read, change and write the job's manifest under a lock: the server and the job's process both write it."""
    import fcntl

    with open(folder / ".manifest.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = _read_json(folder / "manifest.json")
        change(manifest)
        _write_json(folder / "manifest.json", manifest)
    return manifest


def check_capacity() -> None:
    running = [other.id for other in list_jobs() if other.status == "running"]
    if len(running) >= MAX_RUNNING:
        raise InputError(f"{len(running)} jobs are running already ({', '.join(running)}); wait for one to finish "
                         "or stop it (the machine has two cores)")


def stop_job(job: Job) -> None:
    """Interrupt the job's process and its workers as Ctrl-C would: finished runs stay, the job can resume."""
    pid = job.manifest.get("pid")
    if job.status == "running" and pid:
        try:
            os.killpg(pid, signal.SIGINT)      # the job leads its own process group (start_new_session)
        except ProcessLookupError:
            pass


def find_job(job_id: str) -> Job:
    if not ID_PATTERN.fullmatch(job_id or "") or not (jobs_dir() / job_id / "manifest.json").is_file():
        raise InputError(f"job '{job_id}': no such job")
    return Job(jobs_dir() / job_id)


def list_jobs(kind: str | None = None) -> list[Job]:
    """Every job on disk, newest first (optionally of one kind)."""
    root = jobs_dir()
    if not root.is_dir():
        return []
    jobs = [Job(path) for path in root.iterdir()
            if ID_PATTERN.fullmatch(path.name) and (path / "manifest.json").is_file()]
    return sorted((job for job in jobs if kind is None or job.manifest.get("kind") == kind),
                  key=lambda job: job.id, reverse=True)


def process_alive(pid: int | None, started: str | None) -> bool:
    """Whether ``pid`` is a live (not zombie) process started at ``started`` (its start time, read when it was
    launched), so that a reused pid is not mistaken for the job."""
    if not pid:
        return False
    if Path("/proc/self/stat").exists():
        return started is not None and process_start(pid) == started and _state(pid) not in ("Z", "X")
    return pid_alive(pid)                     # no /proc (macOS): the pid alone


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), None if there is none."""
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split())[19]
    except (OSError, IndexError):
        return None


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return "X"


def zip_folder(folder: Path) -> bytes:
    """The folder as a zip archive (paths relative to its parent), without lock and temporary files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.endswith((".lock", ".tmp")):
                archive.write(path, path.relative_to(folder.parent).as_posix())
    return buffer.getvalue()


# -- inside the job's process -------------------------------------------------------------------------------
def measure_progress(folder: Path, manifest: dict) -> dict:
    """Runs finished in the job's batch folder, of the total its manifest plans."""
    from sim.experiments.batch import ResultStore

    batch = folder / manifest["batch"]
    try:
        total = _read_json(batch / "manifest.json").get("runs")
        done = len(ResultStore(batch).done_run_indices()) if (batch / "runs").is_dir() else 0
    except (OSError, ValueError):      # a part being gathered right now: measure again next time
        return {}
    if total is None:
        return {"done": 0, "total": None, "phase": "starting"}
    phase = "running" if done < total else "summarising and drawing the figures"
    return {"done": min(done, total), "total": total, "phase": phase}


def run_job(folder: Path) -> int:
    """Run the job's command here, with a thread rewriting progress.json; record how it ended."""
    manifest = update_manifest(folder, lambda manifest: _running(manifest, os.getpid()))
    finished = threading.Event()

    def report_progress():
        while not finished.wait(PROGRESS_SECONDS):
            progress = measure_progress(folder, manifest)
            if progress:
                _write_json(folder / "progress.json", {**progress, "updated": _now()})

    threading.Thread(target=report_progress, name="progress", daemon=True).start()
    stopped = "stopped", "interrupted: finished runs are kept; resume to run the rest"
    status, error, code = "done", None, 0
    try:
        with _noting_interrupts() as interrupted:
            code = TASKS[manifest["kind"]](manifest["argv"], folder / manifest["output"])
        if code == 130 or (code and interrupted.is_set()):
            (status, error), code = stopped, 130
        elif code:
            status, error = "failed", f"orgsim exited with status {code} (see the log)"
    except InputError as exc:
        status, error, code = "failed", str(exc), 2
        print(f"orgsim: error: {exc}", flush=True)
    except KeyboardInterrupt:
        (status, error), code = stopped, 130
    except BaseException as exc:     # noqa: BLE001 (a job must record how it ended, whatever ended it)
        traceback.print_exc()
        if interrupted.is_set():     # Ctrl-C inside compiled code can surface as another error (SystemError ...)
            (status, error), code = stopped, 130
        else:
            status, error, code = "failed", f"{type(exc).__name__}: {exc}", 1
    finished.set()
    progress = measure_progress(folder, manifest)
    _write_json(folder / "progress.json", {**progress, "phase": status, "updated": _now()})

    def ended(manifest):
        manifest.update(status=status, error=error, returncode=code)
        manifest["sessions"][-1].update(ended=_now(), status=status)

    update_manifest(folder, ended)
    return code


@contextlib.contextmanager
def _noting_interrupts():
    """An event set when this process gets SIGINT (stop_job's Ctrl-C), which still raises KeyboardInterrupt:
    whatever error the interrupt then surfaces as, the job is recorded as stopped, not failed."""
    interrupted = threading.Event()

    def on_interrupt(signum, frame):
        interrupted.set()
        signal.default_int_handler(signum, frame)

    if threading.current_thread() is not threading.main_thread():   # signals reach the main thread only
        yield interrupted
        return
    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def run_orgsim(argv: list[str]) -> int:
    """``orgsim <argv>`` in this process: the command line's own checks and messages (InputError propagates)."""
    from sim.cli import build_parser

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        raise InputError(f"orgsim {' '.join(argv[:1])}: the command line was refused (see the log)") from exc
    return args.handler(args)


def run_whatif(argv: list[str], output: Path) -> int:
    """``orgsim compare``, then each mechanism's contribution to quality in the base and the variant
    (sim/contributions.py, from the same runs: contributions.csv, contributions.png)."""
    code = run_orgsim(argv)
    if code == 0:
        from sim.contributions import write_ensemble_contributions
        from sim.experiments.batch import read_runs

        runs = read_runs(output)
        labels = {0: f"{argv[1]} (base)", 1: argv[2]}        # compare BASE VARIANT ...
        write_ensemble_contributions(runs.assign(trust=runs["arm"].map(labels)), output)
    return code


TASKS = {"whatif": run_whatif, "readiness": lambda argv, output: run_orgsim(argv)}


def _child_environment() -> dict:
    """This environment, with the project first on the path: the job imports the same ``sim`` as the server."""
    path = os.pathsep.join(p for p in (str(PROJECT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _read_json(path: Path) -> dict:
    for _ in range(3):              # a writer's os.replace is atomic; a read that races it simply retries
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            time.sleep(0.05)
    return {}


def _write_json(path: Path, data: dict) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2, default=str))
    os.replace(temporary, path)


if __name__ == "__main__":
    sys.exit(run_job(Path(sys.argv[1])))
