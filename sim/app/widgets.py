"""Pieces the pages share: a job's progress and outputs, figures and tables from files, an error beside a field."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import pandas as pd
import solara

from sim.app import jobs
from sim.errors import InputError

POLL_SECONDS = 1.0
STATUS_WORDS = {"new": "not started", "running": "running", "done": "finished", "failed": "failed",
                "stopped": "stopped (finished runs are kept)"}


@solara.component
def Heading(text: str, level: int = 3, classes: list[str] = []):      # noqa: B006
    """A heading (solara.Markdown would load KaTeX from the internet: the app stays offline)."""
    solara.HTML(tag=f"h{level}", unsafe_innerHTML=html.escape(text), classes=classes,
                style="margin: 0.6em 0 0.3em 0")


@solara.component
def Para(text: str, classes: list[str] = []):      # noqa: B006
    solara.HTML(tag="p", unsafe_innerHTML=html.escape(text), classes=classes)


@solara.component
def FieldError(messages: list[str], group: str):
    """The error(s) of one field or group of controls, shown right under it."""
    for message in messages:
        solara.Error(message, classes=["field-error", f"error-{group}"], dense=True)


def submit_job(submit, errors: solara.Reactive, selected: solara.Reactive, fields_named, fallback: str) -> None:
    """Start a job with ``submit()``; bad input puts the command line's message under every field it
    names (``fields_named(message)``), or under ``fallback``, and starts nothing."""
    try:
        job = submit()
    except InputError as exc:
        message = str(exc)
        errors.set({key: [message] for key in (fields_named(message) or [fallback])})
        return
    errors.set({})
    selected.set(job.id)


def use_ticker(active: bool) -> int:
    """A number that grows every POLL_SECONDS while ``active``: a component reading it redraws from disk."""
    tick, set_tick = solara.use_state(0)

    def poll():
        while active:
            time.sleep(POLL_SECONDS)
            set_tick(lambda value: value + 1)

    solara.use_thread(poll, dependencies=[active])
    return tick


@solara.component
def JobPicker(kind: str, selected: solara.Reactive):
    """The jobs of one kind on disk, newest first: pick one to see it (a reload finds them all again)."""
    listed = jobs.list_jobs(kind)
    use_ticker(any(job.status == "running" for job in listed))
    if not listed:
        solara.Text("No jobs yet.")
        return
    labels = {f"{job.id}: {job.manifest.get('title', '')} ({STATUS_WORDS.get(job.status, job.status)})": job.id
              for job in listed[:30]}
    current = next((label for label, job_id in labels.items() if job_id == selected.value), None)
    solara.Select("Jobs (from results/app/jobs/)", values=list(labels), value=current,
                  on_value=lambda label: selected.set(labels[label]))


@solara.component
def JobPanel(job_id: str, show_outputs):
    """A job's status, progress bar, log and download; ``show_outputs(job)`` draws its results once done."""
    job = jobs.find_job(job_id)
    status = job.status
    use_ticker(status == "running")
    error, set_error = solara.use_state("")
    manifest, progress = job.manifest, job.progress()
    with solara.Card(manifest.get("title", job.id), subtitle=f"job {job.id}: {STATUS_WORDS.get(status, status)}",
                     classes=["job-panel", f"job-{status}"]):
        done, total = progress.get("done", 0), progress.get("total")
        if status == "running":
            solara.ProgressLinear(100.0 * done / total if total else True)
            solara.Text(f"{done} of {total} runs finished; {progress.get('phase', '')}" if total else
                        "preparing the runs", classes=["job-progress"])
        elif total:
            solara.Text(f"{done} of {total} runs finished", classes=["job-progress"])
        if manifest.get("error") and status != "running":
            solara.Error(manifest["error"], classes=["job-error"])
        if error:
            solara.Error(error)

        def act(action):
            try:
                action(job)
                set_error("")
            except Exception as exc:      # noqa: BLE001 (InputError and OSError alike: said on the page)
                set_error(str(exc))

        with solara.Row():
            if status == "running":
                solara.Button("Stop", on_click=lambda: act(jobs.stop_job), outlined=True)
            if status == "stopped":
                solara.Button("Resume", on_click=lambda: act(jobs.start_job), color="primary")
            solara.FileDownload(lambda: jobs.zip_folder(job.folder), filename=f"{job.id}.zip",
                                label="Download the job folder (zip)")
        with solara.Details("Log"):
            solara.Preformatted(job.log_tail(40) or "(nothing yet)")
    if status == "done":
        show_outputs(job)


@solara.component
def Figure(path: Path, caption: str = ""):
    if path.is_file():
        if caption:
            Heading(caption, 4)
        solara.Image(path.read_bytes(), width="100%", classes=[f"figure-{path.stem}"])


@solara.component
def Table(path: Path, rows: int = 15):
    """A CSV as a paged table, a JSON file as indented text."""
    if path.suffix == ".csv":
        try:
            frame = pd.read_csv(path)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            solara.Error(f"{path.name}: cannot read it as CSV ({exc})")
            return
        Heading(f"{path.name} ({len(frame)} rows)", 4)
        solara.DataFrame(frame.round(4), items_per_page=rows)
    elif path.suffix == ".json":
        try:
            text = json.dumps(json.loads(path.read_text()), indent=2)
        except (OSError, ValueError) as exc:
            solara.Error(f"{path.name}: cannot read it as JSON ({exc})")
            return
        with solara.Details(f"{path.name}"):
            solara.Preformatted(text[:20000] + ("\n..." if len(text) > 20000 else ""))
