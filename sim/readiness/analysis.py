"""The runs behind a readiness report and what is read from them.

The organisation's base scenario and one what-if per lever and risk (sim/readiness/mapping.py) run over the
same parameter sets and replicates with the same seeds (common random numbers, as ``orgsim compare``:
``seed_index = set x replicates + replicate`` in every arm), through the project's batch runner (parallel,
resumable). From the runs:

- the trajectory: weekly series of the base arm, their weighted 5/25/50/75/95% quantiles by week;
- the mechanisms' contributions to the quality index since the programme start (ODD 7.8), the same way;
- the probability of each CQC rating at the start and every anniversary (the base arm's ``cqc_<year>``);
- each lever's and risk's effect on the chosen outcome: the weighted mean paired difference with its 95%
  bootstrap interval and the 5-95% range of the paired differences (sim.experiments.compare), ranked by the
  effect in the outcome's better direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.experiments.batch import BatchResult, OutputSelection, RunSpec, run_batch
from sim.experiments.compare import RATINGS, paired_differences, summarise
from sim.quality import TERMS
from sim.readiness.mapping import ANCHOR, Lever, already_in_place, lever_step, write_arms
from sim.readiness.profile import Profile

SERIES = ("quality", "practising_share", "l4l_complete", "l4l_in_progress", "rpiws", "engagement_mean")
CONTRIBUTION_PREFIX = "quality_contribution_"
QUANTILES = {"q05": 0.05, "q25": 0.25, "median": 0.5, "q75": 0.75, "q95": 0.95}
# outcomes a leader can rank the levers by: read at the horizon's end (the same date in every arm, so that a
# lever that delays the programme is judged on the same calendar), and which direction is better
OUTCOMES = {
    "quality_final": ("quality index at the horizon's end (CQC bands: 1 requires improvement, 2 good, 3 outstanding)",
                      1),
    "cqc_latest_score": ("CQC rating at the horizon's end (0 inadequate .. 3 outstanding)", 1),
    "practising_share_final": ("share of staff practising at the horizon's end (0-1)", 1),
    "engagement_mean_final": ("mean staff engagement at the horizon's end (0-1)", 1),
    "morale_final": ("mean staff morale at the horizon's end (0-1)", 1),
    "rpiws_total": ("RPIWs held by the horizon's end", 1),
    "leavers_total": ("staff who left, start of the run to the horizon's end", -1),
}


@dataclass(frozen=True)
class Arm:
    name: str           # "base" or the lever's name
    kind: str           # base, lever or risk
    label: str
    step: str
    path: Path


def check_outcome(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise InputError(f"--outcome {outcome}: not allowed; choose one of {', '.join(OUTCOMES)}")


def plan_arms(profile: Profile, folder: Path, levers, network: dict | None = None,
              keep_in_place: bool = False) -> tuple[list[Arm], list[tuple[Lever, str]]]:
    """Write the base and what-if scenarios into ``folder``; return the arms to run and the levers left out
    (with why: already in place). ``keep_in_place`` runs every lever given (a zero-size one included)."""
    running, skipped = [], []
    for lever in levers:
        if not keep_in_place and already_in_place(lever, profile):
            skipped.append((lever, "already in place"))
        else:
            running.append(lever)
    arms = [Arm("base", "as planned", "base", "the organisation as described", path) if lever is None else
            Arm(lever.name, lever.kind, lever.label, lever_step(lever, profile), path)
            for lever, path in write_arms(profile, running, folder, network)]
    return arms, skipped


def arm_specs(arms: list[Arm], sets: pd.DataFrame, replicates: int, seed: int, scale: float,
              end=None) -> list[RunSpec]:
    """Every arm x parameter set x replicate; the same seed for a (set, replicate) pair in every arm (``end``: stop
    the runs early, for tests)."""
    specs = []
    rows = sets.drop(columns="weight").to_dict("records")
    for number, arm in enumerate(arms):
        for set_index, params in enumerate(rows):
            params = {k: float(v) for k, v in params.items() if "." not in k}   # per-trust columns never apply here
            for replicate in range(replicates):
                specs.append(RunSpec(
                    run_index=len(specs), scenario=str(arm.path.resolve()), params=params,
                    seed_index=set_index * replicates + replicate, base_seed=seed, scale=scale, end=end,
                    labels={"arm": number, "arm_name": arm.name, "param_set": set_index, "replicate": replicate,
                            "weight": float(sets["weight"].iloc[set_index]) / replicates}))
    return specs


def run_arms(specs: list[RunSpec], out_dir: Path | None, workers: int = 1, progress: bool = True,
             description: dict | None = None) -> BatchResult:
    contributions = tuple(f"{CONTRIBUTION_PREFIX}{term}" for term in TERMS)
    return run_batch(specs, out_dir, OutputSelection(series=SERIES + contributions), workers=workers,
                     progress=progress, description=description or {"kind": "orgsim readiness"})


# -- what is read from the runs --------------------------------------------------------------------------
def weighted_quantiles(values: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Per column of ``values`` (runs x columns): the QUANTILES, interpolated as compare.weighted_quantile."""
    order = np.argsort(values, axis=0, kind="stable")
    ordered = np.take_along_axis(values, order, axis=0)
    w = weights[order]
    cumulative = np.cumsum(w, axis=0) - 0.5 * w
    total = w.sum(axis=0)
    return {name: np.array([np.interp(q * total[c], cumulative[:, c], ordered[:, c]) for c in range(values.shape[1])])
            for name, q in QUANTILES.items()}


def _base(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["arm"] == 0]


def trajectory_bands(series: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Long table ``variable, week, years, q05..q95`` over the base arm's runs: the weekly series, L4L
    participants (in progress + complete), and each quality term's contribution summed from the programme start
    (``contribution_<term>``, and ``contribution_net``)."""
    base = _base(runs)
    part = series[series["run_index"].isin(base["run_index"])].copy()
    part["l4l_participants"] = part["l4l_in_progress"] + part["l4l_complete"]
    start_week = (ANCHOR - pd.Timestamp(part["date"].iloc[0]).date()).days // 7
    terms = [c.removeprefix(CONTRIBUTION_PREFIX) for c in part.columns if c.startswith(CONTRIBUTION_PREFIX)]
    since = part[[CONTRIBUTION_PREFIX + t for t in terms]].mul((part["week"] >= start_week).astype(float), axis=0)
    summed = since.groupby(part["run_index"]).cumsum().set_axis([f"contribution_{t}" for t in terms], axis=1)
    part = pd.concat([part, summed.assign(contribution_net=summed.sum(axis=1))], axis=1)
    weights = base.set_index("run_index")["weight"]
    variables = ["quality", "practising_share", "l4l_participants", "l4l_complete", "rpiws", "engagement_mean",
                 *summed.columns, "contribution_net"]
    frames = []
    for variable in variables:
        wide = part.pivot(index="run_index", columns="week", values=variable)
        bands = weighted_quantiles(wide.to_numpy(dtype=float), weights.loc[wide.index].to_numpy(dtype=float))
        frames.append(pd.DataFrame({"variable": variable, "week": wide.columns,
                                    "years": (wide.columns - start_week) / 52.18, **bands}))
    return pd.concat(frames, ignore_index=True)


def rating_probabilities(runs: pd.DataFrame, arm: int = 0) -> pd.DataFrame:
    """Per programme year (0 = at the start): the weighted share of runs at each CQC rating."""
    part = runs[runs["arm"] == arm]
    weights = part["weight"].to_numpy(dtype=float)
    rows = []
    for column in sorted(c for c in part.columns if c.startswith("cqc_") and c[4:].isdigit()):
        ratings = part[column].to_numpy()
        if pd.isna(ratings).all():
            continue
        rows.append({"year": int(column[4:]) - ANCHOR.year,
                     **{r: float(weights[ratings == r].sum() / weights.sum()) for r in RATINGS}})
    return pd.DataFrame(rows, columns=["year", *RATINGS])


def lever_effects(runs: pd.DataFrame, arms: list[Arm], outcome: str, seed: int = 0) -> pd.DataFrame:
    """One row per lever and risk: its paired effect on ``outcome`` (compare.summarise), ``gain`` (the effect in
    the outcome's better direction), whether its 95% interval excludes zero (``clear``), the share of its runs
    rated good or better at the end, and its ``rank``: among levers 1 helps most, among risks 1 harms most."""
    names = [arm.name for arm in arms]
    table = summarise(paired_differences(runs, names, [outcome]), seed=seed)
    better = OUTCOMES[outcome][1]
    info = pd.DataFrame([{"variant": a.name, "kind": a.kind, "label": a.label, "step": a.step} for a in arms[1:]])
    table = info.merge(table, on="variant", how="left")
    table["gain"] = better * table["difference"]
    table["clear"] = (table["ci_low"] > 0) | (table["ci_high"] < 0)
    good = {a: _share_good(runs[runs["arm"] == number]) for number, a in enumerate(names)}
    table["good_or_better_share"] = table["variant"].map(good)
    table["base_good_or_better_share"] = good["base"]
    # levers: the most helpful first; risks: the most harmful first
    table = table.assign(order=np.where(table["kind"] == "lever", -table["gain"], table["gain"]))
    table = table.sort_values(["kind", "order"], kind="stable").drop(columns="order").reset_index(drop=True)
    table["rank"] = table.groupby("kind").cumcount() + 1
    return table


def _share_good(part: pd.DataFrame) -> float:
    weights = part["weight"].to_numpy(dtype=float)
    good = part["cqc_latest"].isin(["good", "outstanding"]).to_numpy()
    return float(weights[good].sum() / weights.sum()) if weights.sum() else float("nan")


def lever_ranking(effects: pd.DataFrame) -> list[str]:
    """The levers' names, most helpful first."""
    return list(effects.loc[effects["kind"] == "lever", "variant"])
