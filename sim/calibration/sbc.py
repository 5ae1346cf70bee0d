"""Simulation-based calibration (SBC) of the whole calibration pipeline, on a reduced configuration.

``orgsim calibrate-sbc``: for k = 0..K-1, draw a true parameter set from the prior (a few free
parameters of calibration/priors.yaml), simulate the chosen trusts once with it (the
pseudo-observations, written as a targets file of the same fitted statistics), calibrate against
them with the same ABC-SMC (replicates, stopping rules) as ``orgsim calibrate``, and record the rank
of each true value among L draws from the posterior. If the pipeline is calibrated, every
parameter's ranks are uniform on 0..L (Talts et al. 2018); a U shape says the posterior is too
narrow, a hump too wide, a slope that it is biased.

Seeds: truth k from ``SeedSequence(seed, spawn_key=(k,))``; its pseudo-observations from trust seeds
with base seed ``seed`` and run index 2**62 + k (away from the particle digests of the calibration);
calibration k uses base seed ``seed + 1 + k``; its posterior draws ``SeedSequence(seed, spawn_key=(k, 1))``.

Folder results/calibration/<name>/: manifest.json, priors.yaml (the reduced priors), truth/k<k>.json
and targets/k<k>.yaml, runs/k<k>/ (each calibration, resumable), ranks.csv (one row per finished k
and parameter; appended as each finishes), sbc_ranks.png, sbc.md. A rerun skips the finished k and
resumes an unfinished one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sim.argtypes import add_workers_option, positive_float, positive_int, seed as seed_type
from sim.errors import InputError

from .posterior import load_posterior
from .priors import DEFAULT_PRIORS, PriorSet, load_priors, split_particle
from .provenance import provenance, write_json
from .simulation import simulate_trusts
from .smc import RESULTS_ROOT, CalibrationSetup, StoppingRules, calibrate, is_finished, run_directory
from .targets import DEFAULT_TARGETS, POOLED_STATISTICS, RATINGS, Target, TargetSet, load_targets

DEFAULT_PARAMETERS = ("rpiw_effect", "quality_practice_weight", "dropout_per_module")
OBSERVATION_RUN_INDEX = 2 ** 62
BAND = 0.99   # the uniform band of the rank histograms: 99% of bin counts under uniform ranks


def reduced_priors(priors: PriorSet, names) -> PriorSet:
    chosen = [p for p in priors.priors if p.name in set(names)]
    unknown = sorted(set(names) - {p.name for p in chosen})
    if unknown:
        raise InputError(f"--parameters: {', '.join(unknown)} not free in the priors file; allowed: "
                         f"{', '.join(priors.names)}")
    return PriorSet(tuple(chosen))


def priors_yaml(priors: PriorSet) -> dict:
    shared = {p.name: {"low": p.low, "high": p.high, "log": p.log, "why": p.why or "SBC"} for p in priors.priors
              if p.trust is None}
    per_trust: dict[str, dict] = {}
    for p in priors.priors:
        if p.trust is not None:
            per_trust.setdefault(p.field, {"why": p.why or "SBC"})[p.trust] = {"low": p.low, "high": p.high,
                                                                               "log": p.log}
    return {"shared": shared, **({"per_trust": per_trust} if per_trust else {})}


def draw_truth(priors: PriorSet, seed: int, k: int) -> dict[str, float]:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,)))
    truth = {}
    for p in priors.priors:
        u = rng.uniform()
        truth[p.name] = float(np.exp(np.log(p.low) + u * (np.log(p.high) - np.log(p.low))) if p.log
                              else p.low + u * (p.high - p.low))
    return truth


def pseudo_targets(targets: TargetSet, summaries: dict[str, dict]) -> dict:
    """The fitted targets of the simulated trusts with the simulated values as observations (a targets file's
    content). Orderings (full-scale survey only) and statistics the runs do not reach are left out."""
    rows = []
    for t in targets.fitted().for_trusts(summaries):
        if t.kind == "ordering":
            continue
        row = t.model_dump(exclude_none=True, exclude={"note"})
        row["source"] = "simulated (SBC pseudo-observation)"
        try:
            if t.pooled is not None:
                base_key, post_key = POOLED_STATISTICS[t.statistic]
                pooled = {trust: [float(summaries[trust][base_key]), float(summaries[trust][post_key])]
                          for trust in t.trusts_compared(summaries) if float(summaries[trust][base_key]) > 0}
                if not pooled:
                    continue
                row["pooled"], row["observed"] = pooled, Target.pooled_value(pooled)
            elif t.kind == "ordinal":
                row["observed"] = summaries[t.trust]["cqc"][t.statistic.partition(".")[2]]
            elif t.kind == "choice":
                row["observed"] = summaries[t.trust][t.statistic]
                if row["observed"] not in ("top_down", "bottom_up"):
                    continue
            else:
                row["observed"] = float(summaries[t.trust][t.statistic])
        except KeyError:   # e.g. an inspection after --end
            continue
        if isinstance(row["observed"], float) and not np.isfinite(row["observed"]):
            continue
        if t.kind == "ordinal" and row["observed"] not in RATINGS:
            continue
        rows.append(row)
    return {"source": "SBC pseudo-observations", "targets": rows}


def rank_of(truth: float, draws: np.ndarray, rng: np.random.Generator) -> int:
    """Rank of the truth among the draws, 0..len(draws); ties broken at random."""
    below = int(np.sum(draws < truth))
    ties = int(np.sum(draws == truth))
    return below + int(rng.integers(0, ties + 1))


def run_sbc(name: str, *, draws: int, parameters, trusts, scale: float, population: int, replicates: int,
            rules: StoppingRules, posterior_draws: int, seed: int, end: str | None, workers: int,
            results_root: Path = RESULTS_ROOT, targets_path=DEFAULT_TARGETS, priors_path=DEFAULT_PRIORS) -> Path:
    """Run (or resume) the SBC check; returns the folder."""
    folder = run_directory(name, results_root)
    priors = reduced_priors(load_priors(priors_path).for_trusts(trusts), parameters)
    targets = load_targets(targets_path)
    options = {"draws": draws, "parameters": list(parameters), "trusts": list(trusts), "scale": scale,
               "population": population, "replicates": replicates, "posterior_draws": posterior_draws,
               "seed": seed, "end": end, "rules": {k: v for k, v in vars(rules).items()},
               "targets_file": str(targets_path), "priors_file": str(priors_path)}
    manifest_file = folder / "manifest.json"
    if manifest_file.is_file():
        earlier = json.loads(manifest_file.read_text())["options"]
        changed = [k for k in options if k != "draws" and earlier.get(k) != json.loads(json.dumps(options[k]))]
        if changed:
            raise InputError(f"{folder}: an SBC check named '{name}' exists with other options "
                             f"({', '.join(changed)}); give the same options to resume it, or another --name")
    folder.mkdir(parents=True, exist_ok=True)
    write_json(manifest_file, {"kind": "orgsim calibrate-sbc", "options": options, **provenance()})
    (folder / "priors.yaml").write_text(yaml.safe_dump(priors_yaml(priors), sort_keys=False))
    ranks_file = folder / "ranks.csv"
    earlier = pd.read_csv(ranks_file) if ranks_file.is_file() else pd.DataFrame(columns=["k"])
    done = set(earlier["k"])
    _note_other_code(earlier, provenance()["git_commit"])
    end_date = dt.date.fromisoformat(end) if end else None
    for k in range(draws):
        if k in done:
            continue
        truth = draw_truth(priors, seed, k)
        write_json(folder / "truth" / f"k{k:03d}.json", truth)
        params, overrides = split_particle(truth, trusts)
        summaries = simulate_trusts(params, overrides, trusts, base_seed=seed, run_index=OBSERVATION_RUN_INDEX + k,
                                    scale=scale, end=end_date)
        targets_file = folder / "targets" / f"k{k:03d}.yaml"
        targets_file.parent.mkdir(exist_ok=True)
        targets_file.write_text(yaml.safe_dump(pseudo_targets(targets, summaries), sort_keys=False))
        run_name = f"k{k:03d}"
        runs = folder / "runs"
        resume = (runs / run_name / "abc.db").is_file() and not is_finished(run_name, runs)
        print(f"calibrate-sbc: draw {k + 1} of {draws}: truth " + ", ".join(f"{n}={v:.3g}" for n, v in truth.items())
              + (" (resumed)" if resume else ""), file=sys.stderr, flush=True)
        if not is_finished(run_name, runs):
            if (runs / run_name).exists() and not resume:
                import shutil

                shutil.rmtree(runs / run_name)   # a calibration killed before its first generation
            setup = CalibrationSetup(name=run_name, targets_path=str(targets_file), priors_path=str(folder / "priors.yaml"),
                                     scale=scale, population_size=population, replicates=replicates,
                                     seed=seed + 1 + k, end=end, trusts=list(trusts))
            calibrate(setup, rules, workers=workers, resume=resume, results_root=runs, posterior_dir=runs / run_name)
        posterior = load_posterior(runs / run_name / f"posterior_{run_name}.csv")
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k, 1)))
        rows = rng.choice(len(posterior.frame), size=posterior_draws, replace=True, p=posterior.weights)
        records = [{"k": k, "parameter": p.name, "truth": truth[p.name],
                    "rank": rank_of(truth[p.name], posterior.frame[p.name].to_numpy(dtype=float)[rows], rng),
                    "posterior_draws": posterior_draws, "commit": posterior.manifest.get("git_commit", "unknown")}
                   for p in priors.priors]
        earlier = pd.concat([earlier, pd.DataFrame(records)], ignore_index=True) if len(earlier) else pd.DataFrame(records)
        partial = ranks_file.with_suffix(".csv.partial")       # replaced in one step: a kill never leaves half a file
        earlier.to_csv(partial, index=False, float_format="%.6g")
        partial.replace(ranks_file)
    write_sbc_summary(folder)
    return folder


def _note_other_code(ranks: pd.DataFrame, commit: str) -> None:
    """Finished draws are reused whatever code made them: say so when it is not this code (or is not recorded)."""
    if ranks.empty:
        return
    made = ranks["commit"].fillna("unknown").astype(str) if "commit" in ranks else pd.Series("unknown", index=ranks.index)
    other = sorted(set(ranks.loc[made != commit, "k"]))
    if other:
        print(f"calibrate-sbc: note: {len(other)} finished draw(s) ({', '.join(map(str, other[:10]))}"
              f"{', ...' if len(other) > 10 else ''}) were made by other code than this commit ({commit}) and are "
              "reused; to check this code alone, give another --name", file=sys.stderr, flush=True)


def rank_bins(posterior_draws: int, draws: int) -> int:
    """Bins of the rank histogram: about K/2 draws' worth of resolution, at most 10, dividing L+1 ranks."""
    return int(max(2, min(10, draws // 2 or 1, posterior_draws + 1)))


def uniform_band(draws: int, bins: int, level: float = BAND) -> tuple[float, float]:
    from scipy.stats import binom

    tail = (1 - level) / 2
    return float(binom.ppf(tail, draws, 1 / bins)), float(binom.ppf(1 - tail, draws, 1 / bins))


def sbc_table(ranks: pd.DataFrame) -> pd.DataFrame:
    """Per parameter: draws, mean normalised rank (0.5 if calibrated), bins outside the uniform band, and the
    chi-square p-value of uniform ranks."""
    from scipy.stats import chisquare

    rows = []
    for parameter, part in ranks.groupby("parameter", sort=False):
        draws, posterior_draws = len(part), int(part["posterior_draws"].iloc[0])
        bins = rank_bins(posterior_draws, draws)
        counts = np.histogram(part["rank"], bins=bins, range=(0, posterior_draws + 1))[0]
        low, high = uniform_band(draws, bins)
        rows.append({"parameter": parameter, "draws": draws, "mean rank / L": float(part["rank"].mean() / posterior_draws),
                     "bins": bins, "bins outside the 99% band": int(np.sum((counts < low) | (counts > high))),
                     "chi-square p (uniform)": float(chisquare(counts).pvalue) if draws >= bins else float("nan")})
    return pd.DataFrame(rows)


def plot_ranks(ranks: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parameters = list(dict.fromkeys(ranks["parameter"]))
    fig, axes = plt.subplots(1, len(parameters), figsize=(3.4 * len(parameters), 2.8), squeeze=False)
    for ax, parameter in zip(axes[0], parameters):
        part = ranks[ranks["parameter"] == parameter]
        draws, posterior_draws = len(part), int(part["posterior_draws"].iloc[0])
        bins = rank_bins(posterior_draws, draws)
        low, high = uniform_band(draws, bins)
        ax.axhspan(low, high, color="#bdc3c7", alpha=0.6, label=f"{BAND:.0%} band, uniform ranks")
        ax.axhline(draws / bins, color="#7f8c8d", lw=1)
        ax.hist(part["rank"], bins=bins, range=(0, posterior_draws + 1), color="#2c7fb8", alpha=0.85)
        ax.set_title(parameter, fontsize=9)
        ax.set_xlabel(f"rank of the truth among {posterior_draws} posterior draws", fontsize=8)
    axes[0][0].set_ylabel("true parameter sets")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Simulation-based calibration: {len(ranks) // max(1, len(parameters))} true parameter sets from "
                 "the prior; uniform ranks = calibrated pipeline", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_sbc_summary(folder: Path) -> Path:
    from .report import _table

    ranks = pd.read_csv(folder / "ranks.csv")
    options = json.loads((folder / "manifest.json").read_text())["options"]
    plot_ranks(ranks, folder / "sbc_ranks.png")
    table = sbc_table(ranks)
    lines = ["# Simulation-based calibration check", "",
             f"{ranks['k'].nunique()} true parameter sets drawn from the prior of {', '.join(options['parameters'])}; "
             f"trusts {', '.join(options['trusts'])}, scale {options['scale']}, population {options['population']}, "
             f"{options['replicates']} replicate(s) per particle, stopping rules {options['rules']}, end {options['end']}. "
             f"Each set's pseudo-observations were calibrated against as the real data are, and the rank of the "
             f"true value among {options['posterior_draws']} posterior draws recorded.", "",
             "![ranks](sbc_ranks.png)", "", _table(table.to_dict("records")), "",
             sbc_verdict(table), ""]
    path = folder / "sbc.md"
    path.write_text("\n".join(lines))
    return path


def sbc_verdict(table: pd.DataFrame) -> str:
    """What the check shows, in words, from its table."""
    if table.empty:
        return "No finished draw yet."
    draws = int(table["draws"].min())
    bad = table[(table["bins outside the 99% band"] > 0) | (table["chi-square p (uniform)"] < 0.01)]
    power = ("With fewer than 20 true parameter sets the check can show only gross miscalibration. "
             if draws < 20 else "")
    if bad.empty:
        return (power + f"No parameter's ranks depart from uniform at the 99% level over {draws} draws: no sign that "
                "the pipeline's posteriors are too narrow, too wide or biased on this reduced configuration.")
    return (power + f"Ranks depart from uniform for {', '.join(bad['parameter'])}: the pipeline's posterior for "
            "them is miscalibrated on this configuration (a U shape: too narrow, a hump: too wide, a slope: "
            "biased); read the figure before trusting their intervals.")


def register(subparsers) -> None:
    sbc = subparsers.add_parser("calibrate-sbc", help="simulation-based calibration check of the ABC pipeline",
                                description="Draw true parameter sets from the prior, simulate pseudo-observations, "
                                            "calibrate each and record the rank of the truth among posterior draws "
                                            "(a reduced configuration: few parameters, few trusts, small scale).")
    sbc.add_argument("--name", default="sbc", help="folder under --results (default sbc)")
    sbc.add_argument("--draws", type=positive_int, default=20, help="true parameter sets K (20)")
    sbc.add_argument("--parameters", type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
                     default=list(DEFAULT_PARAMETERS), help="free parameters, comma-separated (default "
                                                            f"{','.join(DEFAULT_PARAMETERS)})")
    sbc.add_argument("--trusts", type=lambda text: [t.strip() for t in text.split(",") if t.strip()],
                     default=["SASH", "SATH"], help="trusts simulated (default SASH,SATH)")
    sbc.add_argument("--scale", type=positive_float, default=0.1, help="staff scale (0.1)")
    sbc.add_argument("--population", type=positive_int, default=100, help="particles per generation (100)")
    sbc.add_argument("--replicates", type=positive_int, default=1, help="runs per trust per particle (1)")
    sbc.add_argument("--generations", type=positive_int, default=4, help="generations per calibration (4)")
    sbc.add_argument("--converge", type=positive_float, metavar="TOL", help="also stop each calibration once converged")
    sbc.add_argument("--posterior-draws", type=positive_int, default=100, help="posterior draws L for the rank (100)")
    sbc.add_argument("--end", help="stop every run at this date, YYYY-MM-DD (tests)")
    sbc.add_argument("--seed", type=seed_type, default=20150701, help="base seed (20150701)")
    sbc.add_argument("--results", type=Path, default=RESULTS_ROOT, help="folder of calibration results")
    add_workers_option(sbc, "simulations")
    sbc.set_defaults(handler=cmd_sbc)


def cmd_sbc(args: argparse.Namespace) -> int:
    from .smc import chosen_trusts

    trusts = chosen_trusts(args.trusts, None)
    if args.population < 10:
        raise InputError(f"--population: {args.population} is too small; give at least 10")
    if args.end:
        try:
            dt.date.fromisoformat(args.end)
        except ValueError:
            raise InputError(f"--end: '{args.end}' is not a date (YYYY-MM-DD)") from None
    rules = StoppingRules(generations=args.generations, converge=args.converge)
    folder = run_sbc(args.name, draws=args.draws, parameters=args.parameters, trusts=trusts, scale=args.scale,
                     population=args.population, replicates=args.replicates, rules=rules,
                     posterior_draws=args.posterior_draws, seed=args.seed, end=args.end, workers=args.workers,
                     results_root=args.results)
    print(f"wrote {folder / 'sbc.md'}, {folder / 'sbc_ranks.png'}, {folder / 'ranks.csv'}")
    return 0
