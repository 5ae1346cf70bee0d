"""``orgsim validate``: the evaluation's causal claims (experiments/claims.yaml) checked over an ensemble.

Every arm a claim needs (a scenario, possibly with parameters overridden) runs for every
(parameter set, replicate) pair with the same seed (common random numbers, as in ``orgsim
compare``: the specs come from sim/experiments/compare.py and run through the one batch runner).
Each claim's statistic is computed on the pairs (weighted by the parameter sets' weights), with an
interval from a two-stage bootstrap: parameter sets resampled by weight, then replicates within
each set, so that both the parameter and the stochastic spread count (with one parameter set, the
defaults, it is the ordinary bootstrap over replicates). The pass rules are in
sim/experiments/claims.py.

Written to the output folder, besides the batch's manifest.json and runs/:
``validate.csv`` and ``validate.md`` (one row per claim, or per trust for a pattern claim: effect,
interval, pairs, pass/fail/not available), ``validate.png`` (effects with intervals), ``pairs.csv``
(every paired value) and ``validate.json`` (the claims as validated, the options, the commit).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

import sim
from sim.argtypes import add_workers_option, positive_int, scale
from sim.errors import InputError
from sim.experiments.batch import OutputSelection, run_batch
from sim.experiments.claims import (Arm, EffectClaim, GapShareClaim, Indicator, PatternClaim, SHIPPED_CLAIMS,
                                    SmallerEffectClaim, arms, load_claims, outcome_label)
from sim.experiments.cluster import add_cluster_options
from sim.experiments.compare import BOOTSTRAP_RESAMPLES, compare_specs, load_parameter_sets
from sim.experiments.figures import pyplot, save
from sim.runner import git_commit

DEFAULT_OUT = Path("results") / "validate"
PAIRS_WANTED = 200  # the acceptance: every claim over at least 200 paired runs
QUICK = {"scale": 0.05, "sets": 2, "replicates": 4, "resamples": 500}
STATUS_COLOURS = {"pass": "#2ca02c", "fail": "#d62728", "not available": "#999999"}


# -- command line -----------------------------------------------------------------------------------
def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate", help="check the evaluation's causal claims (experiments/claims.yaml) over an ensemble, "
                         "with common random numbers: effect, 90%% interval, pass or fail")
    parser.add_argument("--claims", type=Path, help="claims file (default: the shipped experiments/claims.yaml)")
    parser.add_argument("--posterior", help="calibrated parameter sets: CSV or parquet, one row per set, optional 'weight' "
                                            "(default: the documented default parameters)")
    parser.add_argument("--sets", type=positive_int, help="with --posterior: draw this many sets by weight "
                                                          "(default: every set, weighted)")
    parser.add_argument("--replicates", type=positive_int,
                        help=f"stochastic replicates per parameter set (default: enough for {PAIRS_WANTED} pairs)")
    parser.add_argument("--scale", type=scale, help="staff scale factor in (0, 1] (1.0; --quick 0.05)")
    parser.add_argument("--end", type=_date, help="stop the runs at this date (YYYY-MM-DD)")
    parser.add_argument("--seed", type=int, default=20150701, help="base seed (20150701)")
    parser.add_argument("--resamples", type=positive_int, help=f"bootstrap resamples ({BOOTSTRAP_RESAMPLES})")
    parser.add_argument("--quick", action="store_true",
                        help="a reduced, fast check: scale {scale}, {sets} sets (with --posterior), {replicates} "
                             "replicates, {resamples} resamples, unless given".format(**QUICK))
    add_workers_option(parser)
    parser.add_argument("--scheduler", help="Dask scheduler address (e.g. tcp://scheduler-host:8786): run on that cluster")
    add_cluster_options(parser)
    parser.add_argument("--out", type=Path, help=f"results folder (default {DEFAULT_OUT}, {DEFAULT_OUT}-quick with "
                                                 "--quick); re-running resumes it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_validate)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def settings(args) -> dict:
    """The options with --quick's reductions and the defaults filled in."""
    quick = QUICK if args.quick else {}
    if args.sets is not None and not args.posterior:
        raise InputError("--sets: without --posterior there is one parameter set (the documented defaults); "
                         "use --replicates, or give --posterior FILE")
    sets = args.sets if args.sets is not None else (quick.get("sets") if args.posterior else None)
    return {
        "claims": str(args.claims or SHIPPED_CLAIMS), "posterior": args.posterior, "sets": sets,
        "replicates": args.replicates or quick.get("replicates"), "scale": args.scale or quick.get("scale", 1.0),
        "end": args.end, "seed": args.seed, "resamples": args.resamples or quick.get("resamples", BOOTSTRAP_RESAMPLES),
        "quick": args.quick,
        "out": args.out or (DEFAULT_OUT.with_name(DEFAULT_OUT.name + "-quick") if args.quick else DEFAULT_OUT),
    }


def run_validate(args) -> int:
    options = settings(args)
    claims = load_claims(options["claims"])
    parameter_sets = load_parameter_sets(options["posterior"], options["sets"], options["seed"])
    replicates = options["replicates"] or math.ceil(PAIRS_WANTED / len(parameter_sets))
    options["replicates"] = replicates
    arm_list, specs = validation_specs(claims.claims, parameter_sets, replicates, options["seed"],
                                       options["scale"], options["end"])
    out_dir = Path(options["out"])
    print(f"{len(claims.claims)} claims, {len(arm_list)} arms x {len(parameter_sets)} parameter set(s) x "
          f"{replicates} replicate(s) = {len(specs)} runs -> {out_dir}", flush=True)
    description = {"validate": {**_jsonable(options), "claims_as_validated": claims.model_dump(mode="json"),
                                "arms": [arm.label() for arm in arm_list]}}
    try:
        result = run_batch(specs, out_dir, OutputSelection(), workers=args.workers, scheduler=args.scheduler,
                           description=description, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished runs are saved in {out_dir}; run the same command again to resume")
        return 130
    weights = parameter_sets["weight"].to_numpy(dtype=float)
    table, pairs = evaluate(claims.claims, arm_list, result.runs, weights, replicates,
                            resamples=options["resamples"], seed=options["seed"])
    written = write_outputs(table, pairs, out_dir, options, claims)
    print(printable(table))
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


def _jsonable(options: dict) -> dict:
    return {key: str(value) if isinstance(value, (Path, dt.date)) else value for key, value in options.items()}


# -- runs -------------------------------------------------------------------------------------------
def validation_specs(claims, parameter_sets: pd.DataFrame, replicates: int, seed: int, scale: float, end=None):
    """The distinct arms of all claims, and their run specs: arm x parameter set x replicate.

    Each arm's specs come from compare_specs with the arm's parameter override applied to every set;
    a pair (parameter set, replicate) has the same seed in every arm (common random numbers).
    """
    arm_list = list(dict.fromkeys(arm for claim in claims for arm in arms(claim).values()))
    specs = []
    for number, arm in enumerate(arm_list):
        sets = parameter_sets.assign(**dict(arm.params)) if arm.params else parameter_sets
        for spec in compare_specs([arm.scenario], sets, replicates, seed, scale, end):
            specs.append(dataclasses.replace(spec, run_index=len(specs),
                                             labels={**spec.labels, "arm": number, "arm_label": arm.label()}))
    return arm_list, specs


# -- statistics -------------------------------------------------------------------------------------
def paired_matrix(runs: pd.DataFrame, arm: int, values: pd.Series, sets: int, replicates: int) -> np.ndarray:
    """An arm's values as a (parameter set, replicate) matrix; NaN where a run is missing."""
    part = runs["arm"] == arm
    frame = pd.DataFrame({"param_set": runs.loc[part, "param_set"], "replicate": runs.loc[part, "replicate"],
                          "value": values[part]})
    matrix = frame.pivot(index="param_set", columns="replicate", values="value")
    return matrix.reindex(index=range(sets), columns=range(replicates)).to_numpy(dtype=float)


def outcome_values(runs: pd.DataFrame, outcome) -> pd.Series | None:
    """One number per run (an indicator for ``{key, equals}``); None if the runs do not report it."""
    key = outcome.key if isinstance(outcome, Indicator) else outcome
    if key not in runs or runs[key].isna().all():
        return None
    if isinstance(outcome, Indicator):
        return (runs[key] == outcome.equals).astype(float).where(runs[key].notna())
    return pd.to_numeric(runs[key], errors="coerce")


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    total = weights.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (values * weights).sum(axis=-1) / total, np.nan)


def statistic(claim, role: str | None = None):
    """The claim's statistic: a function of paired values by role (arrays ``(..., pairs)``) and pair weights."""
    if isinstance(claim, EffectClaim):
        return lambda v, w: weighted_mean(v["variant"] - v["base"], w)
    if isinstance(claim, SmallerEffectClaim):
        sign = 1.0 if claim.expected == "higher" else -1.0
        return lambda v, w: weighted_mean(np.abs(v["variant"] - v["base"]) - sign * (v["reference"] - v["base"]), w)
    if isinstance(claim, PatternClaim):
        return lambda v, w: weighted_mean(v[role], w)
    return lambda v, w: _share_closed(weighted_mean(v["high_off"] - v["low_off"], w),
                                      weighted_mean(v["high"] - v["low"], w))


def _share_closed(gap_off: np.ndarray, gap: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(gap != 0, 1.0 - gap_off / np.where(gap != 0, gap, 1.0), np.nan)


def bootstrap(values: dict[str, np.ndarray], set_weights: np.ndarray, function, level: float,
              resamples: int, seed: int) -> tuple[float, float, float, int]:
    """Estimate, interval at ``level`` and complete pairs of ``function`` over (set, replicate) matrices.

    Pairs with a missing value in any role are left out. Each resample draws the parameter sets by
    weight (with replacement), then the replicates within each drawn set (with replacement).
    """
    sets, replicates = next(iter(values.values())).shape
    flat = {role: matrix.reshape(-1) for role, matrix in values.items()}
    complete = np.all([np.isfinite(column) for column in flat.values()], axis=0)
    flat = {role: np.where(complete, column, 0.0) for role, column in flat.items()}
    set_weights = np.asarray(set_weights, dtype=float) / np.sum(set_weights)
    pair_weights = np.repeat(set_weights / replicates, replicates) * complete
    estimate = float(function(flat, pair_weights))
    rng = np.random.default_rng(seed)
    drawn_sets = rng.choice(sets, size=(resamples, sets), p=set_weights)
    drawn = (drawn_sets[:, :, None] * replicates + rng.integers(replicates, size=(resamples, sets, replicates)))
    drawn = drawn.reshape(resamples, sets * replicates)
    resampled = function({role: column[drawn] for role, column in flat.items()}, complete[drawn].astype(float))
    if np.all(np.isnan(resampled)):
        return estimate, math.nan, math.nan, int(complete.sum())
    low, high = np.nanquantile(resampled, [(1 - level) / 2, (1 + level) / 2])
    return estimate, float(low), float(high), int(complete.sum())


def evaluate(claims, arm_list: list[Arm], runs: pd.DataFrame, set_weights: np.ndarray, replicates: int,
             resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One table row per claim (per scenario for a pattern claim), and every paired value used."""
    rows, pairs = [], []
    sets = len(set_weights)
    for claim in claims:
        roles = arms(claim)
        parts = list(roles) if isinstance(claim, PatternClaim) else [None]
        for part in parts:
            outcome = _outcome(claim, part)
            row = {"claim": claim.name, "part": part or "", "kind": claim.kind, "outcome": outcome_label(outcome),
                   "rule": rule(claim), "threshold": getattr(claim, "threshold", math.nan), "level": claim.level,
                   "evidence": " ".join(claim.evidence.split())}
            used = {part: roles[part]} if part else roles
            values = outcome_values(runs, outcome)
            if values is None:
                key = outcome.key if isinstance(outcome, Indicator) else outcome
                rows.append({**row, "pairs": 0, "status": "not available",
                             "note": f"the runs report no '{key}' (not a summary key of this model version)"})
                continue
            matrices = {role: paired_matrix(runs, arm_list.index(arm), values, sets, replicates)
                        for role, arm in used.items()}
            estimate, low, high, complete = bootstrap(matrices, set_weights, statistic(claim, part), claim.level,
                                                      resamples, seed)
            status, note = judge(claim, estimate, low, high, matrices, set_weights, complete)
            rows.append({**row, "effect": estimate, "interval_low": low, "interval_high": high, "pairs": complete,
                         "status": status, "note": note, "detail": detail(claim, matrices, set_weights, part)})
            pairs.extend(_pair_rows(claim.name, part, used, matrices, set_weights))
    columns = ["claim", "part", "kind", "outcome", "rule", "threshold", "effect", "interval_low", "interval_high",
               "level", "pairs", "status", "detail", "note", "evidence"]
    return pd.DataFrame(rows).reindex(columns=columns), pd.DataFrame(pairs)


def _outcome(claim, part):
    if isinstance(claim, PatternClaim):
        return Indicator(key=claim.key, equals=claim.expected_values[part])
    return claim.outcome


def rule(claim) -> str:
    if isinstance(claim, EffectClaim):
        return f"{claim.level:.0%} interval of mean(variant - base) {'> 0' if claim.expected == 'higher' else '< 0'}"
    if isinstance(claim, SmallerEffectClaim):
        signed = "(reference - base)" if claim.expected == "higher" else "(base - reference)"
        return f"{claim.level:.0%} interval of mean(|variant - base| - {signed}) < 0"
    if isinstance(claim, PatternClaim):
        return f"share of runs >= {claim.threshold:g}"
    return f"share of the {claim.high}-{claim.low} gap closed >= {claim.threshold:g}"


def judge(claim, estimate: float, low: float, high: float, matrices, set_weights, complete: int) -> tuple[str, str]:
    if complete == 0:
        return "fail", "no complete pairs"
    if isinstance(claim, GapShareClaim):
        gap = _mean_of(matrices["high"] - matrices["low"], set_weights)
        if not gap > 0:
            return "fail", f"{claim.high} is not above {claim.low} without the override (mean gap {gap:.3g})"
    if isinstance(claim, EffectClaim):
        passed = low > 0 if claim.expected == "higher" else high < 0
    elif isinstance(claim, SmallerEffectClaim):
        passed = high < 0
    else:
        passed = estimate >= claim.threshold
    return ("pass" if passed else "fail"), ""


def _mean_of(matrix: np.ndarray, set_weights: np.ndarray) -> float:
    values = matrix.reshape(-1)
    weights = np.repeat(set_weights / np.sum(set_weights) / matrix.shape[1], matrix.shape[1]) * np.isfinite(values)
    return float(weighted_mean(np.nan_to_num(values), weights))


def detail(claim, matrices, set_weights, part) -> str:
    """The means behind the statistic, in words."""
    mean = {role: _mean_of(matrix, set_weights) for role, matrix in matrices.items()}
    if isinstance(claim, EffectClaim):
        return f"base {mean['base']:.3g}, variant {mean['variant']:.3g}"
    if isinstance(claim, SmallerEffectClaim):
        return (f"effect of variant {mean['variant'] - mean['base']:+.3g}, "
                f"of reference {mean['reference'] - mean['base']:+.3g}")
    if isinstance(claim, PatternClaim):
        return f"{mean[part]:.0%} of runs choose {claim.expected_values[part]}"
    return (f"gap {mean['high'] - mean['low']:.3g} with the mechanisms, "
            f"{mean['high_off'] - mean['low_off']:.3g} without")


def _pair_rows(claim: str, part, used: dict[str, Arm], matrices, set_weights) -> list[dict]:
    rows = []
    for role, matrix in matrices.items():
        sets, replicates = matrix.shape
        for param_set in range(sets):
            for replicate in range(replicates):
                rows.append({"claim": claim, "part": part or "", "role": role, "arm": used[role].label(),
                             "param_set": param_set, "replicate": replicate,
                             "weight": float(set_weights[param_set] / np.sum(set_weights) / replicates),
                             "value": matrix[param_set, replicate]})
    return rows


# -- outputs ----------------------------------------------------------------------------------------
def write_outputs(table: pd.DataFrame, pairs: pd.DataFrame, out_dir: Path, options: dict, claims) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in ("validate.csv", "validate.md", "validate.png", "pairs.csv", "validate.json")]
    table.to_csv(paths[0], index=False, float_format="%.6g")
    record = {"kind": "orgsim validate", "package_version": sim.__version__, "git_commit": git_commit(),
              "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **_jsonable(options),
              "claims_sha256": hashlib.sha256(Path(options["claims"]).read_bytes()).hexdigest(),
              "claims_as_validated": claims.model_dump(mode="json"),
              "interval": "two-stage bootstrap: parameter sets by weight, then replicates within each set",
              "statuses": {_row_label(row): row["status"] for _, row in table.iterrows()}}
    paths[2] = save(plot_claims(table), paths[2])
    paths[1].write_text(markdown_report(table, record, paths[2].name))
    pairs.to_csv(paths[3], index=False, float_format="%.6g")
    paths[4].write_text(json.dumps(record, indent=2, default=str) + "\n")
    return paths


def _row_label(row) -> str:
    return f"{row['claim']} [{row['part']}]" if row["part"] else row["claim"]


def _interval_text(row) -> str:
    if row["status"] == "not available":
        return "-"
    if not np.isfinite(row["interval_low"]):
        return f"{row['effect']:.3g}"
    return f"{row['effect']:.3g} [{row['interval_low']:.3g}, {row['interval_high']:.3g}]"


def printable(table: pd.DataFrame) -> str:
    shown = pd.DataFrame({"claim": [_row_label(row) for _, row in table.iterrows()],
                          "outcome": table["outcome"],
                          "effect [interval]": [_interval_text(row) for _, row in table.iterrows()],
                          "pairs": table["pairs"].astype(int), "status": table["status"]})
    return shown.to_string(index=False)


def markdown_report(table: pd.DataFrame, record: dict, figure: str) -> str:
    counts = table["status"].value_counts()
    lines = [
        "# orgsim validate: the evaluation's causal claims",
        "",
        f"{counts.get('pass', 0)} pass, {counts.get('fail', 0)} fail, {counts.get('not available', 0)} not available "
        f"(claims file `{record['claims']}`, commit `{record['git_commit']}`, {record['created']}).",
        "",
        f"Parameter sets: {record['posterior'] or 'the documented defaults'}"
        + (f" ({record['sets']} drawn by weight)" if record.get("sets") else "")
        + f"; {record['replicates']} replicate(s) per set; scale {record['scale']}"
        + (f"; runs end {record['end']}" if record.get("end") else "")
        + f"; seed {record['seed']}; intervals from {record['resamples']} bootstrap resamples "
          "(parameter sets by weight, then replicates within each set).",
        "",
        "| claim | outcome | rule | effect [interval] | pairs | status | detail |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for _, row in table.iterrows():
        available = row["status"] != "not available" and isinstance(row["detail"], str)
        detail_text = row["detail"] if available else row["note"]
        if row["status"] != "not available" and isinstance(row["note"], str) and row["note"]:
            detail_text += f"; {row['note']}"
        cells = [_row_label(row), row["outcome"], row["rule"], _interval_text(row), int(row["pairs"]),
                 f"**{row['status']}**", detail_text]
        lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |")
    lines += ["", f"![Effects with intervals]({figure})", "", "## Evidence", ""]
    for claim, evidence in dict(zip(table["claim"], table["evidence"])).items():
        lines.append(f"- **{claim}**: {evidence}")
    return "\n".join(lines) + "\n"


def plot_claims(table: pd.DataFrame):
    """Effects with their intervals (left; zero line) and shares with their thresholds (right), coloured by status."""
    plt = pyplot()
    effects = table[table["kind"].isin(["effect", "smaller_effect"])]
    shares = table[table["kind"].isin(["pattern", "gap_share"])]
    panels = [(part, title) for part, title in ((effects, "Effects (variant - base, or the claim's statistic)"),
                                                (shares, "Shares (of runs, or of the gap)")) if len(part)]
    heights = [max(len(part), 1) for part, _ in panels]
    figure, axes = plt.subplots(len(panels), 1, figsize=(9, 0.6 * sum(heights) + 1.6 * len(panels)),
                                gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (part, title) in zip(axes[:, 0], panels):
        positions = np.arange(len(part))
        for position, (_, row) in zip(positions, part.iterrows()):
            colour = STATUS_COLOURS[row["status"]]
            if row["status"] == "not available":
                ax.text(0.5, position, "not available", color=colour, va="center", ha="center",
                        transform=ax.get_yaxis_transform())
                continue
            ax.hlines(position, row["interval_low"], row["interval_high"], color=colour, linewidth=3)
            ax.plot(row["effect"], position, "o", color=colour)
            if np.isfinite(row["threshold"]):
                ax.plot([row["threshold"]] * 2, [position - 0.35, position + 0.35], color="black", linewidth=1.2)
        if title.startswith("Effects"):
            ax.axvline(0, color="grey", linestyle="--", linewidth=0.8)
        ax.set_yticks(positions, [f"{_row_label(row)}\n(pass if {_pass_side(row)})" for _, row in part.iterrows()],
                      fontsize=8)
        if title.startswith("Shares"):
            low, high = ax.get_xlim()
            ax.set_xlim(min(low, -0.02), max(high, 1.02))
        ax.set_ylim(len(part) - 0.5, -0.5)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    handles = [plt.Line2D([], [], color=colour, marker="o", linewidth=3, label=status)
               for status, colour in STATUS_COLOURS.items()]
    axes[0, 0].legend(handles=handles, fontsize=8, loc="best")
    level = table["level"].dropna()
    figure.suptitle(f"Causal claims: estimate and {level.iloc[0]:.0%} interval (black tick: threshold)"
                    if len(level) else "Causal claims")
    figure.tight_layout()
    return figure


def _pass_side(row) -> str:
    if row["kind"] in ("pattern", "gap_share"):
        return f">= {row['threshold']:g}"
    return "interval > 0" if row["rule"].endswith("> 0") else "interval < 0"
