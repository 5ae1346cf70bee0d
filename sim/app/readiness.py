"""Readiness: the questionnaire of sim/readiness/profile.py as a form, with the network survey upload; the board
report (sim/readiness/report.py, run as ``orgsim readiness``) on screen and as downloads.

The form writes a profile file exactly as a leader would and checks it with the command line's own
``load_and_check``, so a bad answer gets the command line's message, shown under the question it names.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from pathlib import Path

import solara
import yaml

from sim.app import jobs
from sim.app.levers import profile_path
from sim.app.paths import POSTERIOR, default_workers, readiness_profiles
from sim.app.widgets import FieldError, Heading, JobPanel, JobPicker, Para, submit_job
from sim.errors import InputError
from sim.readiness.analysis import OUTCOMES
from sim.readiness.profile import questions

SURVEY_FILE = "network_survey.csv"
CHOICES = {            # questions answered by picking (the others are typed, and checked as typed)
    "horizon_years": [3, 4, 5],
    "distributed_leadership": ["none", "partly", "in_place"],
    "regulatory_position": ["none", "regulatory_action", "special_measures_quality", "special_measures_finance"],
    "regulator_relationship": ["relational", "traditional"],
    "value_streams": ["top_down", "bottom_up", "not_decided"],
}
CULTURE = ["shared_values", "values_based_recruitment", "reflective_routines"]
RUN_DEFAULTS = {"posterior": True, "sets": 20, "replicates": 2, "scale": 0.25, "workers": default_workers(),
                "outcome": "quality_final"}


def default_answers() -> dict:
    return {q.key: _as_form_value(q.default) for q in questions()}


def example_answers(name: str) -> tuple[dict, bytes | None]:
    """An example profile's answers as form values, and its network survey's bytes if it has one."""
    path = profile_path(name)
    raw = yaml.safe_load(path.read_text())
    answers = {**default_answers(), **{key: _as_form_value(value) for key, value in raw.items()}}
    survey = None
    if raw.get("network_survey"):
        survey = (path.parent / raw["network_survey"]).read_bytes()
        answers["network_survey"] = SURVEY_FILE
    return answers, survey


def _as_form_value(value):
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _as_form_value(v) for k, v in value.items()}
    if value is None:
        return ""
    return value


def profile_text(answers: dict) -> str:
    """The answers as a profile file. Typed answers go in as YAML scalars, as a leader would type them in the
    file (so "-5" is a number, refused with the profile's own message); anything else is quoted text."""
    lines = []
    for q in questions():
        value = answers.get(q.key, "")
        if isinstance(value, str) and q.key != "organisation":
            value = value.strip()
            text = value if re.fullmatch(r"[A-Za-z0-9_.+\-]*", value) else yaml.safe_dump(value).strip()
            text = text.removesuffix("\n...").strip()
        else:
            text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        lines.append(f"{q.key}: {text}".rstrip())
    return "\n".join(lines) + "\n"


def check_profile(answers: dict, survey: bytes | None, settings: dict, folder: Path) -> Path:
    """Write profile.yaml (and the survey) into ``folder`` and check them as ``orgsim readiness`` does."""
    from sim.readiness.report import Options, load_and_check

    folder.mkdir(parents=True, exist_ok=True)
    answers = dict(answers)
    if survey is not None:
        (folder / SURVEY_FILE).write_bytes(survey)
        answers["network_survey"] = SURVEY_FILE
    else:
        answers["network_survey"] = ""
    path = folder / "profile.yaml"
    path.write_text(profile_text(answers))
    options = Options(posterior=str(POSTERIOR) if settings["posterior"] else None, sets=settings["sets"],
                      replicates=settings["replicates"], scale=settings["scale"], outcome=settings["outcome"])
    try:
        load_and_check(path, options)
    except InputError as exc:           # name the form's file as the leader knows it, not the scratch folder
        raise InputError(str(exc).replace(f"{folder}/", "")) from None
    return path


def questions_named(message: str) -> list[str]:
    """The questions an error names (``question 'staff'``, ``'staff' (How many ...)``, or the survey file)."""
    keys = [q.key for q in questions() if re.search(rf"'{q.key}'|\b{q.key}:", message)]
    if SURVEY_FILE in message and "network_survey" not in keys:
        keys.append("network_survey")
    return keys


def submit(answers: dict, survey: bytes | None, settings: dict) -> jobs.Job:
    with tempfile.TemporaryDirectory() as scratch:
        check_profile(answers, survey, settings, Path(scratch))
        job = jobs.create_job("readiness", f"readiness of {answers.get('organisation') or 'an organisation'}",
                              output="report", batch="report/runs", inputs={"answers": answers, "run": settings})
        for name in ("profile.yaml", SURVEY_FILE):
            if (Path(scratch) / name).is_file():
                shutil.copy(Path(scratch) / name, job.folder / name)
    argv = ["readiness", str(job.folder / "profile.yaml"), "--out", str(job.output),
            "--posterior", str(POSTERIOR) if settings["posterior"] else "defaults",
            "--sets", str(settings["sets"]), "--replicates", str(settings["replicates"]),
            "--scale", str(settings["scale"]), "--outcome", settings["outcome"],
            "--workers", str(settings["workers"]), "--no-progress"]
    return jobs.start_job(job, argv)


@solara.component
def Question(q, answers: solara.Reactive, errors: dict):
    value = answers.value.get(q.key, "")

    def put(new):
        answers.set({**answers.value, q.key: new})

    label = f"{q.text}"
    if q.key in CHOICES:
        solara.Select(label, values=CHOICES[q.key], value=value if value in CHOICES[q.key] else None, on_value=put)
    elif q.key == "culture_in_place":
        solara.SelectMultiple(label, values=[v for v in value if v in CULTURE] if isinstance(value, list) else [],
                              all_values=CULTURE, on_value=put)
    elif q.key == "values_work_continues":
        solara.Switch(label=label, value=bool(value), on_value=put)
    elif q.key == "ceo_change":
        change = value if isinstance(value, dict) else None
        solara.Switch(label=label, value=change is not None,
                      on_value=lambda on: put({"date": "", "kind": "interim"} if on else ""))
        if change is not None:
            with solara.Row():
                solara.InputText("date of the change (YYYY-MM)", value=str(change.get("date", "")),
                                 on_value=lambda v: put({**change, "date": v}))
                solara.Select("kind", values=["permanent", "interim"], value=change.get("kind"),
                              on_value=lambda v: put({**change, "kind": v}))
    else:
        solara.InputText(label, value=str(value), on_value=put, message=f"allowed: {q.allowed}",
                         classes=[f"question-{q.key}"])
    FieldError(errors.get(q.key, []), q.key)


@solara.component
def SurveyUpload(survey: solara.Reactive, errors: dict):
    Para("Your staff network survey, if you have one: a CSV file of who talks to whom about improvement "
         "(columns source,target).")
    if survey.value is not None:
        with solara.Row(style={"align-items": "center"}):
            solara.Text(f"network survey: {len(survey.value.splitlines()) - 1} ties read", classes=["survey-loaded"])
            solara.Button("remove", text=True, on_click=lambda: survey.set(None))
    solara.FileDrop(label="Drop the network survey CSV here", on_file=lambda info: survey.set(info["data"]),
                    lazy=False)
    FieldError(errors.get("network_survey", []), "network_survey")


@solara.component
def RunSettings(settings: solara.Reactive):
    s = settings.value

    def put(key, value):
        settings.set({**settings.value, key: value})

    with solara.Card("The runs", subtitle="parameter sets x replicates x (the plan and each lever and risk)"):
        solara.Switch(label="over the calibrated posterior (off: the default parameters, uncalibrated)",
                      value=s["posterior"], on_value=lambda v: put("posterior", v))
        with solara.Row():
            solara.InputInt("parameter sets", value=s["sets"], on_value=lambda v: put("sets", v))
            solara.InputInt("replicates", value=s["replicates"], on_value=lambda v: put("replicates", v))
            solara.InputFloat("scale", value=s["scale"], on_value=lambda v: put("scale", v))
            solara.InputInt("workers", value=s["workers"], on_value=lambda v: put("workers", min(max(v or 1, 1), 2)))
        solara.Select("rank the levers by", values=list(OUTCOMES), value=s["outcome"],
                      on_value=lambda v: put("outcome", v))


def show_report(job: jobs.Job) -> None:
    report = job.output / "report.html"
    if not report.is_file():
        solara.Error("the report is missing from the job's folder")
        return
    with solara.Row():
        for name, mime in (("report.pdf", "application/pdf"), ("report.html", "text/html"),
                           ("report.md", "text/markdown")):
            if (job.output / name).is_file():
                solara.FileDownload(lambda name=name: (job.output / name).read_bytes(), filename=name,
                                    label=f"Download {name}", mime_type=mime)
    solara.HTML(tag="iframe", attributes={"srcdoc": report.read_text(), "title": "readiness report"},
                style="width: 100%; height: 1400px; border: 1px solid #ddd;", classes=["readiness-report"])


@solara.component
def Page():
    answers = solara.use_reactive(default_answers())
    survey = solara.use_reactive(None)
    settings = solara.use_reactive(dict(RUN_DEFAULTS))
    errors = solara.use_reactive({})
    example = solara.use_reactive(None)
    newest = jobs.list_jobs("readiness")
    selected = solara.use_reactive(newest[0].id if newest else None)

    def load_example(name):
        example.set(name)
        loaded, data = example_answers(name)
        answers.set(loaded)
        survey.set(data)
        errors.set({})

    def run():
        submit_job(lambda: submit(answers.value, survey.value, settings.value), errors, selected, questions_named, "form")

    solara.Title("orgsim: readiness")
    with solara.Columns([2, 3]):
        with solara.Column():
            with solara.Card("Your organisation", subtitle="the questions of `orgsim readiness init`"):
                solara.Select("start from an example profile (scenarios/readiness/)", values=readiness_profiles(),
                              value=example.value, on_value=load_example)
                for q in questions():
                    if q.key == "network_survey":
                        SurveyUpload(survey, errors.value)
                    else:
                        Question(q, answers, errors.value)
            RunSettings(settings)
            FieldError(errors.value.get("form", []), "form")
            solara.Button("Run the readiness report", color="primary", on_click=run, classes=["run-readiness"])
        with solara.Column():
            Heading("Reports", 3)
            JobPicker("readiness", selected)
            if selected.value:
                JobPanel(selected.value, show_report)
