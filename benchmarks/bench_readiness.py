"""Speed of a readiness report, and the smallest scale that keeps the lever ranking of full scale.

For each example profile (scenarios/readiness/*.yaml) the levers and risks run at each scale with the same
parameter sets and seeds (common random numbers), and their ranking by the outcome is compared with the
ranking at scale 1:

- ``spearman``: rank correlation of the levers' mean effects with full scale's;
- ``top``: whether the most helpful lever is the same;
- ``clear_reversals``: pairs of levers that both scales separate (the paired difference between the two
  levers' effects has a 95% t interval excluding zero at each scale) but order oppositely. A scale keeps the
  ranking when there are none: what it cannot separate, full scale with as many runs cannot either;
- ``seconds``: wall time of that scale's runs (``computed``: how many ran in this session; runs already in
  the results folder are read back, so time a scale on a fresh folder).

Then one whole report per profile (``orgsim readiness`` with its defaults, at ``--report-scale``) is timed.

    python benchmarks/bench_readiness.py --workers 2                       # ~15 min on the 2-core machine
    python benchmarks/bench_readiness.py --scales 0.1,1 --replicates 4     # quicker, coarser

Writes results/bench_readiness/bench_readiness.csv and bench_readiness.md (the tables printed); the runs stay in
results/bench_readiness/<profile>/scale_<s>/ (re-running resumes them). The figures measured are in
docs/readiness/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from scipy.stats import t as t_dist

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sim.experiments.compare import load_parameter_sets  # noqa: E402
from sim.readiness import analysis  # noqa: E402
from sim.readiness.mapping import LEVERS, RISKS  # noqa: E402
from sim.readiness.network import network_fields, survey_measures  # noqa: E402
from sim.readiness.profile import load_profile, survey_path  # noqa: E402

PROFILES = sorted((REPO / "scenarios" / "readiness").glob("*.yaml"))


def effects_at(profile_file: Path, scale: float, sets: pd.DataFrame, args) -> tuple:
    """Lever effects, the per-pair gains of each lever (for pairwise comparisons), the runs' seconds and count."""
    profile = load_profile(profile_file)
    fields = network_fields(survey_measures(survey_path(profile, profile_file))) if profile.network_survey else None
    folder = Path(args.out) / profile_file.stem / f"scale_{scale:g}"
    arms, _ = analysis.plan_arms(profile, folder / "scenarios", LEVERS + RISKS, fields)
    specs = analysis.arm_specs(arms, sets, args.replicates, args.seed, scale)
    started = time.perf_counter()
    result = analysis.run_arms(specs, folder / "runs", args.workers, progress=False)
    seconds = time.perf_counter() - started
    effects = analysis.lever_effects(result.runs, arms, args.outcome)
    runs = result.runs.set_index(["param_set", "replicate"])
    base = runs[runs["arm"] == 0][args.outcome].astype(float)
    better = analysis.OUTCOMES[args.outcome][1]
    gains = pd.DataFrame({arm.name: better * (runs[runs["arm"] == number][args.outcome].astype(float) - base)
                          for number, arm in enumerate(arms) if arm.kind == "lever"})
    return effects, gains, seconds, len(result.runs), result.computed


def clear_order(gains: pd.DataFrame, first: str, second: str) -> int:
    """+1 if ``first`` clearly helps more than ``second`` (paired 95% interval), -1 if clearly less, 0 if unclear."""
    difference = (gains[first] - gains[second]).to_numpy()
    n = len(difference)
    half = t_dist.ppf(0.975, n - 1) * difference.std(ddof=1) / np.sqrt(n) if n > 1 else np.inf
    mean = difference.mean()
    return 0 if abs(mean) <= half else int(np.sign(mean))


def compare_rankings(full: tuple, scaled: tuple) -> dict:
    (full_effects, full_gains), (effects, gains) = full, scaled
    levers = list(full_gains.columns)
    full_mean = full_gains.mean()[levers]
    mean = gains.mean()[levers]
    reversals = sum(1 for i, a in enumerate(levers) for b in levers[i + 1:]
                    if clear_order(full_gains, a, b) * clear_order(gains, a, b) == -1)
    separated = sum(1 for i, a in enumerate(levers) for b in levers[i + 1:] if clear_order(full_gains, a, b))
    return {"spearman": float(spearmanr(full_mean, mean).statistic),
            "top": analysis.lever_ranking(effects)[0] == analysis.lever_ranking(full_effects)[0],
            "top_lever": analysis.lever_ranking(effects)[0], "clear_reversals": reversals,
            "pairs_separated_at_full_scale": separated, "pairs": len(levers) * (len(levers) - 1) // 2}


def time_report(profile_file: Path, args) -> float:
    from sim.readiness.report import Options, make_report

    started = time.perf_counter()
    make_report(profile_file, Path(args.out) / profile_file.stem / "report",
                Options(posterior=args.posterior, scale=args.report_scale, workers=args.workers, progress=False,
                        **({"sets": args.report_sets} if args.report_sets else {}),
                        **({"replicates": args.report_replicates} if args.report_replicates else {})))
    return time.perf_counter() - started


def markdown(table: pd.DataFrame) -> str:
    cells = table.astype(object).map(lambda v: "" if pd.isna(v) else f"{v:.3g}" if isinstance(v, float) else v)
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in cells.to_numpy()]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", nargs="*", type=Path, default=PROFILES)
    parser.add_argument("--scales", default="0.1,0.25,0.5,1")
    parser.add_argument("--posterior", default=str(REPO / "calibration" / "posterior_main.csv"),
                        help="parameter sets, or 'defaults' (default: the shipped posterior)")
    parser.add_argument("--sets", type=int, default=10)
    parser.add_argument("--replicates", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20150701)
    parser.add_argument("--outcome", default="quality_final", choices=list(analysis.OUTCOMES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report-scale", type=float, default=0.25)
    parser.add_argument("--report-sets", type=int)
    parser.add_argument("--report-replicates", type=int)
    parser.add_argument("--no-report", action="store_true", help="skip timing whole reports")
    parser.add_argument("--out", default=str(REPO / "results" / "bench_readiness"))
    args = parser.parse_args()
    args.posterior = None if args.posterior == "defaults" else args.posterior
    scales = sorted({float(s) for s in args.scales.split(",")} | {1.0})
    sets = load_parameter_sets(args.posterior, args.sets, args.seed)
    print(f"{len(sets)} parameter set(s) x {args.replicates} replicate(s), up to {len(LEVERS) + len(RISKS) + 1} arms, "
          f"scales {scales}, {args.workers} worker(s), outcome {args.outcome}", flush=True)
    rows = []
    for profile_file in args.profiles:
        measured = {}
        for scale in sorted(scales, reverse=True):
            effects, gains, seconds, runs, computed = effects_at(profile_file, scale, sets, args)
            measured[scale] = (effects, gains)
            rows.append({"profile": profile_file.stem, "scale": scale, "runs": runs, "computed": computed,
                         "seconds": round(seconds, 1), **compare_rankings(measured[1.0], measured[scale]),
                         "ranking": " > ".join(analysis.lever_ranking(effects))})
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
        if not args.no_report:
            seconds = time_report(profile_file, args)
            rows.append({"profile": profile_file.stem, "scale": args.report_scale, "seconds": round(seconds, 1),
                         "ranking": "whole report (orgsim readiness defaults)"})
            print(f"{profile_file.stem}: whole report at scale {args.report_scale:g} in {seconds:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "bench_readiness.csv", index=False)
    (out / "bench_readiness.md").write_text(markdown(table))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
