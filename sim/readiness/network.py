"""The organisation's own staff network survey, and the five trusts' emulated December 2018 surveys beside it.

**The survey file** is a CSV with columns ``source,target``: one row per person named, ``source`` the
respondent who named ``target`` when asked who they talk to about improvement (the evaluation's question;
ids may be names or numbers, other columns are ignored). Every source is taken as a respondent. Its
measures are the emulation's (``sim.survey.network_measures``, ODD 7.10): reciprocity, components, the share
of respondents outside the largest component, brokerage, density.

**What it sets** (the network's starting structure, ``network`` of the scenario), two simple rules:

- ``team_ties`` (each member's lasting ties to teammates, default 4) = the mean number of people a
  respondent named, rounded, within 2-10: how many colleagues people talk to about improvement;
- ``cross_team_ties`` (mean ties to other teams, default 1) = 1 x (1 - isolated share) / (1 - 0.2), within
  0.25-3: connection across the organisation relative to UHCW's "nearly a fifth of respondents disconnected
  from the core" (Burgess et al. 2022, Table 5.3 notes), the middle of the five trusts, whose networks the
  model builds with the default one cross-team tie each. A survey with a third cut off (SATH) gives 0.83; one
  with none cut off 1.25.

Reciprocity is not an input: in the model it emerges from the culture (ties are returned with a probability
that grows with the culture index, ODD 7.4). The survey's reciprocity is shown beside the five trusts'.

**The five trusts' surveys** are read from a run folder's ``summary.json`` (a full-scale run, e.g.
``orgsim run --all``) or computed by a small run: the five trusts at full scale (the survey is comparable only
there, ODD 7.10) to the week after 1 December 2018, at the report's first parameter set, seed 1.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.runner import TRUSTS
from sim.survey import network_measures

REFERENCE_ISOLATED = 0.2          # UHCW: "nearly a fifth of respondents disconnected from the core"
SURVEY_END = dt.date(2018, 12, 8)   # the week after the December 2018 survey
COMPARED = (("arc_reciprocity", "ties returned (arc reciprocity)"),
            ("isolated_share", "respondents cut off from the core"),
            ("brokerage_simple_share", "one-way ('messenger') brokerage share"),
            ("names_per_respondent", "people named per respondent"))


def read_survey_csv(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Edges (integer ids) and respondents from a source,target CSV; InputError naming the file otherwise."""
    if not path.is_file():
        raise InputError(f"{path}: network survey file not found (question 'network_survey')")
    try:
        table = pd.read_csv(path, dtype=str)
    except Exception as error:   # pandas raises many kinds for a malformed file
        raise InputError(f"{path}: cannot read the network survey as CSV ({error})") from None
    missing = [c for c in ("source", "target") if c not in table.columns]
    if missing:
        raise InputError(f"{path}: the network survey needs columns source,target (missing: {', '.join(missing)})")
    table = table[["source", "target"]].dropna().apply(lambda column: column.str.strip())
    table = table[(table["source"] != "") & (table["target"] != "")]
    self_named = table["source"] == table["target"]
    if self_named.any():
        raise InputError(f"{path}: row(s) {', '.join(str(i + 2) for i in np.flatnonzero(self_named)[:5])} name "
                         "the respondent themselves; remove them")
    table = table.drop_duplicates()
    if len(table) < 10 or table["source"].nunique() < 5:
        raise InputError(f"{path}: the network survey has {len(table)} ties from {table['source'].nunique()} "
                         "respondents; at least 10 ties from 5 respondents are needed")
    codes, _ = pd.factorize(pd.concat([table["source"], table["target"]], ignore_index=True))
    edges = pd.DataFrame({"source": codes[:len(table)], "target": codes[len(table):]}, dtype="int64")
    return edges, np.unique(edges["source"].to_numpy())


def survey_measures(path: Path) -> dict:
    edges, respondents = read_survey_csv(path)
    measures = network_measures(edges, respondents)
    return {**measures, "names_per_respondent": measures["ties"] / measures["respondents"]}


def network_fields(measures: dict) -> dict:
    """The scenario's ``network`` fields set from the survey's measures (the module's two rules)."""
    team_ties = int(np.clip(round(measures["names_per_respondent"]), 2, 10))
    cross = float(np.clip((1 - measures["isolated_share"]) / (1 - REFERENCE_ISOLATED), 0.25, 3.0))
    return {"team_ties": team_ties, "cross_team_ties": round(cross, 3)}


def read_reference_surveys(folder: Path) -> dict[str, dict]:
    """The five trusts' survey measures from a full-scale run folder (summary.json)."""
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise InputError(f"--survey-run {folder}: no summary.json there (a run folder of orgsim run --all)")
    summary = json.loads(path.read_text())
    found = {t: summary[t].get("survey") or {} for t in TRUSTS if t in summary}
    usable = {t: _with_names(m) for t, m in found.items() if m and m.get("comparable")}
    if not usable:
        raise InputError(f"--survey-run {folder}: no trust there has a comparable survey (run the five trusts at "
                         "full scale, scale 1, through December 2018)")
    return usable


def compute_reference_surveys(params: dict, workers: int = 1) -> dict[str, dict]:
    """The five trusts' emulated December 2018 surveys from a small run (full scale, to December 2018, seed 1)."""
    from sim.experiments.batch import OutputSelection, RunSpec, run_batch
    from sim.experiments.outputs import survey_measures as measure_names

    specs = [RunSpec(run_index=i, scenario=t, params=params, seed_index=i, base_seed=1, scale=1.0, end=SURVEY_END)
             for i, t in enumerate(TRUSTS)]
    outputs = OutputSelection(final=tuple(f"survey_{m}" for m in measure_names()) + ("survey_comparable",))
    runs = run_batch(specs, None, outputs, workers=workers, progress=False).runs
    return {row["scenario"]: _with_names({m: row[f"survey_{m}"] for m in measure_names()})
            for row in runs.to_dict("records")}


def _with_names(measures: dict) -> dict:
    respondents = measures.get("respondents") or 0
    return {**measures, "names_per_respondent": measures["ties"] / respondents if respondents else float("nan")}
