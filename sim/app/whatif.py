"""What-if: a trust or a readiness profile, its levers changed with controls, run against its base over the
calibrated posterior as a job (``orgsim compare``), with the base against the variant over time, the chance of
each CQC rating per inspection and each mechanism's contribution (sim/experiments/compare.py, sim/contributions.py).
"""

from __future__ import annotations

import copy
import datetime as dt
import shutil
import tempfile
from pathlib import Path

import solara

from sim.app import jobs, levers
from sim.app.paths import POSTERIOR, default_workers, readiness_profiles, trust_scenarios
from sim.app.widgets import FieldError, Figure, JobPanel, JobPicker, Table, submit_job
from sim.errors import InputError
from sim.scenario import check_run_end, load_scenario

PARAMETER_SOURCES = {"calibrated posterior (calibration/posterior_main.csv)": str(POSTERIOR),
                     "default parameters (uncalibrated)": None}
ENSEMBLE_DEFAULTS = {"sets": 10, "replicates": 2, "scale": 0.25, "end": "", "workers": default_workers(),
                     "seed": 20150701,
                     "parameters": next(iter(PARAMETER_SOURCES))}


def load_base(source: str, name: str, folder: Path) -> tuple[str, object]:
    """The base as ``orgsim compare`` and the variant's ``base:`` name it, and the base scenario. A readiness
    profile's scenario is written into ``folder`` as NAME.yaml (the job runs in the folder above it, where
    scenarios/NAME.yaml is found by name)."""
    if source == "trust":
        return name, load_scenario(name)
    written = levers.write_profile_base(name, folder)
    scenario = load_scenario(str(written))
    path = written.rename(folder / f"{scenario.name}.yaml")
    return path.stem, load_scenario(str(path))


def ensemble_arguments(settings: dict) -> list[str]:
    """The ensemble options of ``orgsim compare``, each checked as the command line checks it."""
    from sim.argtypes import positive_int, scale, seed

    problems, arguments = [], []
    for option, value, check in (("--max-sets", settings["sets"], positive_int),
                                 ("--replicates", settings["replicates"], positive_int),
                                 ("--scale", settings["scale"], scale), ("--seed", settings["seed"], seed),
                                 ("--workers", settings["workers"], positive_int)):
        try:
            arguments += [option, str(check(str(value)))]
        except Exception as exc:       # argparse.ArgumentTypeError: the command line's own words
            problems.append(f"{option}: {exc}")
    if settings["workers"] not in (1, 2) and not problems:
        problems.append(f"--workers {settings['workers']}: give 1 or 2 (the machine has two cores)")
    end = settings["end"].strip()
    if end:
        try:
            arguments += ["--end", dt.date.fromisoformat(end).isoformat()]
        except ValueError:
            problems.append(f"--end: '{end}' is not a date YYYY-MM-DD (blank: the run's own end)")
    posterior = PARAMETER_SOURCES[settings["parameters"]]
    if posterior:
        arguments = ["--posterior", posterior, *arguments]
    if problems:
        raise InputError("; ".join(problems))
    return arguments


def submit(source: str, name: str, lever_values: dict, base_values: dict, settings: dict) -> jobs.Job:
    """Check everything as orgsim compare would, then start the job (nothing is written before the checks pass)."""
    options = ensemble_arguments(settings)
    end = dt.date.fromisoformat(options[options.index("--end") + 1]) if "--end" in options else None
    with tempfile.TemporaryDirectory() as scratch:
        scenarios = Path(scratch) / "scenarios"
        base_name, base = load_base(source, name, scenarios)
        document = levers.variant_document(base.name, base_name, base_values, lever_values)
        if not levers.changed_groups(document):
            raise InputError("the variant is the base: change at least one lever")
        variant = levers.write_variant(document, scenarios / f"{document['name']}.yaml")
        for scenario in (base, variant):
            check_run_end(scenario, end)
        title = f"{name}: {', '.join(levers.GROUP_LABELS[g] for g in levers.changed_groups(document))} changed"
        job = jobs.create_job("whatif", title, output="compare", batch="compare",
                              inputs={"source": source, "name": name, "variant": document, "ensemble": settings})
        shutil.copytree(scenarios, job.folder / "scenarios")
    argv = ["compare", base_name, variant.name, *options, "--out", str(job.output), "--no-progress"]
    return jobs.start_job(job, argv)


@solara.component
def DateRows(rows: list[dict], fields: tuple[str, ...], kinds: tuple[str, ...], on_rows, what: str, new_row: dict):
    """Editable dated rows (CEO changes, regulatory episodes): dates as YYYY-MM-DD text, a kind, remove, add."""
    for number, row in enumerate(rows):
        def change(key, value, number=number):
            on_rows([{**r, key: value} if i == number else r for i, r in enumerate(rows)])

        with solara.Row(style={"align-items": "center"}):
            for field in fields:
                solara.InputText(field, value=row[field], on_value=lambda v, f=field: change(f, v), dense=True,
                                 style={"max-width": "9em"})
            solara.Select("kind", values=list(kinds), value=row["kind"], on_value=lambda v: change("kind", v),
                          dense=True)
            solara.Button(icon_name="mdi-delete", text=True,
                          on_click=lambda number=number: on_rows([r for i, r in enumerate(rows) if i != number]))
    solara.Button(f"add {what}", text=True, icon_name="mdi-plus", on_click=lambda: on_rows([*rows, dict(new_row)]))


@solara.component
def LeverControls(values: dict, set_field, errors: dict, start: str, end: str):
    with solara.Card("CEO changes", subtitle="dated changes of chief executive; none: the CEO stays throughout"):
        DateRows(values["leadership"]["changes"], ("date",), levers.CEO_KINDS,
                 lambda rows: set_field("leadership", "changes", rows), "a CEO change",
                 {"date": start, "kind": "interim"})
        solara.InputText("CEO joins L4L on (YYYY-MM-DD; blank: never)", value=values["leadership"]["ceo_joins_l4l"] or "",
                         on_value=lambda v: set_field("leadership", "ceo_joins_l4l", v))
        FieldError(errors.get("leadership", []), "leadership")
    culture = values["culture"]
    with solara.Card("Cultural work", subtitle="values-based work before and during the run, and its levers"):
        solara.SliderFloat("years of values work before the run", value=culture["values_work_years_before"], min=0,
                           max=20, step=0.5, on_value=lambda v: set_field("culture", "values_work_years_before", v))
        during = culture["values_work_during"]
        solara.Switch(label="values work during the run", value=during is not None,
                      on_value=lambda on: set_field("culture", "values_work_during",
                                                    {"start": start, "end": end} if on else None))
        if during is not None:
            with solara.Row():
                for key in ("start", "end"):
                    solara.InputText(f"values work {key}", value=during[key], dense=True,
                                     on_value=lambda v, k=key: set_field("culture", "values_work_during",
                                                                         {**during, k: v}))
        solara.Switch(label="values-based recruitment", value=culture["values_based_recruitment"],
                      on_value=lambda v: set_field("culture", "values_based_recruitment", v))
        solara.Switch(label="reflective routines", value=culture["reflective_routines"],
                      on_value=lambda v: set_field("culture", "reflective_routines", v))
        solara.SliderFloat("distributed leadership (0: at the top, 1: fully clinical)",
                           value=culture["distributed_leadership"], min=0, max=1, step=0.05,
                           on_value=lambda v: set_field("culture", "distributed_leadership", v))
        FieldError(errors.get("culture", []), "culture")
    with solara.Card("Regulator", subtitle="its style, and dated episodes of regulatory action or special measures"):
        solara.ToggleButtonsSingle(value=values["regulation"]["style"], values=["relational", "traditional"],
                                   on_value=lambda v: set_field("regulation", "style", v))
        DateRows(values["regulation"]["episodes"], ("start", "end"), levers.EPISODE_KINDS,
                 lambda rows: set_field("regulation", "episodes", rows), "an episode",
                 {"start": start, "end": end, "kind": "regulatory_action"})
        FieldError(errors.get("regulation", []), "regulation")
    programme = values["programme"]
    with solara.Card("Programme pace and value streams"):
        for field, label, top in (("l4l_cohorts_per_year", "L4L cohorts a year", 12),
                                  ("alt_places_per_year", "ALT places a year", 60),
                                  ("rpiws_per_year", "RPIWs a year", 60)):
            solara.SliderFloat(label, value=programme[field], min=0, max=top, step=0.5,
                               on_value=lambda v, f=field: set_field("programme", f, v))
        solara.SliderInt("improvement team (KPO) staff", value=programme["kpo_staff"], min=0, max=60,
                         on_value=lambda v: set_field("programme", "kpo_staff", v))
        solara.Select("value streams chosen", values=list(levers.SELECTIONS), value=programme["value_stream_selection"],
                      on_value=lambda v: set_field("programme", "value_stream_selection", v))
        FieldError(errors.get("programme", []), "programme")


@solara.component
def EnsembleControls(settings: solara.Reactive, errors: dict):
    def put(key, value):
        settings.set({**settings.value, key: value})

    s = settings.value
    with solara.Card("Ensemble", subtitle="runs = parameter sets x replicates x 2 (base and variant)"):
        solara.Select("parameters", values=list(PARAMETER_SOURCES), value=s["parameters"],
                      on_value=lambda v: put("parameters", v))
        with solara.Row():
            solara.InputInt("parameter sets", value=s["sets"], on_value=lambda v: put("sets", v))
            solara.InputInt("replicates", value=s["replicates"], on_value=lambda v: put("replicates", v))
            solara.InputFloat("scale", value=s["scale"], on_value=lambda v: put("scale", v))
        with solara.Row():
            solara.InputText("stop at (YYYY-MM-DD; blank: the run's end)", value=s["end"],
                             on_value=lambda v: put("end", v or ""))
            solara.InputInt("workers", value=s["workers"], on_value=lambda v: put("workers", v))
            solara.InputInt("seed", value=s["seed"], on_value=lambda v: put("seed", v))
        runs = (s["sets"] or 0) * (s["replicates"] or 0) * 2
        solara.Text(f"{runs} runs at scale {s['scale']}", classes=["run-count"])
        FieldError(errors.get("ensemble", []), "ensemble")


def show_comparison(job: jobs.Job) -> None:
    out = job.output
    Figure(out / "compare_series.png", "Base against variant over time (median, 50% and 90% of runs)")
    Figure(out / "cqc_shares.png", "The chance of each CQC rating per inspection")
    Figure(out / "contributions.png", "Each mechanism's contribution to the quality index, base and variant")
    Figure(out / "compare.png", "The variant's effect on each outcome")
    Table(out / "compare.csv")


@solara.component
def Page():
    source = solara.use_reactive("trust")
    names = trust_scenarios() if source.value == "trust" else readiness_profiles()
    name = solara.use_reactive("SATH")

    def choose_source(value):
        listed = trust_scenarios() if value == "trust" else readiness_profiles()
        name.set("SATH" if "SATH" in listed else listed[0])
        source.set(value)
    scratch = solara.use_memo(lambda: Path(tempfile.mkdtemp(prefix="orgsim-app-")), [])
    base, base_error = solara.use_memo(lambda: _try_base(source.value, name.value, scratch),
                                       [source.value, name.value])
    base_values = solara.use_memo(lambda: levers.lever_values(base) if base else None, [base])
    values = solara.use_reactive(copy.deepcopy(base_values))
    solara.use_effect(lambda: values.set(copy.deepcopy(base_values)), [base_values])
    settings = solara.use_reactive(dict(ENSEMBLE_DEFAULTS))
    errors = solara.use_reactive({})
    newest = jobs.list_jobs("whatif")
    selected = solara.use_reactive(newest[0].id if newest else None)

    def set_field(group, field, value):
        values.set({**values.value, group: {**values.value[group], field: value}})

    def run():
        submit_job(lambda: submit(source.value, name.value, values.value, base_values, settings.value), errors,
                   selected, levers.groups_named, "base")

    solara.Title("orgsim: what-if")
    with solara.Columns([2, 3]):
        with solara.Column():
            with solara.Card("Start from"):
                solara.ToggleButtonsSingle(value=source.value, values=["trust", "profile"], on_value=choose_source)
                solara.Select("trust scenario" if source.value == "trust" else "readiness profile", values=names,
                              value=name.value if name.value in names else None, on_value=name.set)
                if base:
                    solara.Text(f"{base.name}: {base.start} to {base.end}, {base.staff} staff")
                if base_error:
                    solara.Error(base_error)
                FieldError(errors.value.get("base", []), "base")
            if values.value and base_values and values.value.keys() == base_values.keys():
                LeverControls(values.value, set_field, errors.value, base.programme.start.isoformat(),
                              base.end.isoformat())
                solara.Button("Reset the levers to the base", text=True,
                              on_click=lambda: values.set(copy.deepcopy(base_values)))
            EnsembleControls(settings, errors.value)
            solara.Button("Run the what-if", color="primary", on_click=run, disabled=base is None,
                          classes=["run-whatif"])
        with solara.Column():
            JobPicker("whatif", selected)
            if selected.value:
                JobPanel(selected.value, show_comparison)


def _try_base(source: str, name: str, scratch: Path):
    try:
        return load_base(source, name, scratch / name)[1], ""
    except (InputError, ValueError) as exc:
        return None, str(exc)
