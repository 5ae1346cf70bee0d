"""Command-line subcommands ``sweep``, ``sensitivity``, ``compare``, ``validate`` (sim/experiments/validate.py) and
``discover`` (sim/experiments/discover.py).

``register(subparsers)`` adds them to an argparse subparsers object; each sets
``handler=<function(args) -> int>`` as a default. Handlers raise sim.errors.InputError for bad
input (before any run starts) and return the exit code (130 after Ctrl-C, results kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from pathlib import Path

import pandas as pd

from sim.argtypes import add_workers_option, positive_float, positive_int, scale, seed
from sim.errors import InputError
from sim.experiments import compare as comparison
from sim.experiments import discover, sensitivity, validate
from sim.experiments.batch import BatchResult, OutputSelection, run_batch
from sim.experiments.cluster import add_cluster_options
from sim.experiments.designs import experiment_cases, experiment_specs, sample_points
from sim.experiments.outputs import DEFAULT_COMPARE_OUTPUTS, write_sweep_summary
from sim.experiments.schema import Experiment, load_experiment
from sim.scenario import check_run_end, load_scenario

RESULTS_DIR = Path("results")
DEFAULT_MAX_RUNS = 20_000


def register(subparsers) -> None:
    sweep = subparsers.add_parser("sweep", help="run an experiment file (experiments/NAME.yaml): all runs, resumable")
    sweep.add_argument("experiment", help="experiment name (experiments/NAME.yaml) or path to a .yaml file")
    _add_runner_options(sweep)
    sweep.set_defaults(handler=run_sweep)

    analysis = subparsers.add_parser("sensitivity", help="run a Sobol or Morris experiment and compute its indices")
    analysis.add_argument("experiment", help="experiment name (experiments/NAME.yaml) or path to a .yaml file")
    _add_runner_options(analysis)
    analysis.add_argument("--resamples", type=positive_int, default=100,
                          help="bootstrap resamples for the intervals (100)")
    analysis.add_argument("--conf-level", type=float, default=0.95, help="confidence level of the intervals (0.95)")
    analysis.add_argument("--adaptive", action="store_true",
                          help="Sobol: start at design.samples and double N until S1, ST and their ranking move by at "
                               "most --tolerance between successive N (reusing every finished run)")
    analysis.add_argument("--tolerance", type=positive_float, default=0.05,
                          help="--adaptive: largest change of any S1 or ST between successive N (0.05)")
    analysis.add_argument("--max-n", type=positive_int, default=1024,
                          help="--adaptive: largest N, a power of two (1024)")
    analysis.set_defaults(handler=run_sensitivity)

    what_if = subparsers.add_parser("compare", help="compare variant scenarios with a base scenario, with common random numbers")
    what_if.add_argument("base", help="base scenario (name or path)")
    what_if.add_argument("variants", nargs="+", help="variant scenarios (names, e.g. sath_stable_ceo, or paths)")
    what_if.add_argument("--posterior", help="parameter sets: CSV or parquet, one row per set, optional 'weight' column "
                                             "(default: the documented default parameters)")
    what_if.add_argument("--max-sets", type=positive_int, help="draw this many parameter sets by weight from --posterior")
    what_if.add_argument("--replicates", type=positive_int, default=10, help="stochastic replicates per parameter set (10)")
    what_if.add_argument("--seed", type=seed, default=20150701, help="base seed (20150701)")
    what_if.add_argument("--scale", type=scale, default=1.0, help="staff scale factor in (0, 1] (1.0)")
    what_if.add_argument("--end", type=_date, help="stop the runs at this date (YYYY-MM-DD)")
    what_if.add_argument("--outputs", type=_names, default=list(DEFAULT_COMPARE_OUTPUTS),
                         help=f"comma-separated outputs ({','.join(DEFAULT_COMPARE_OUTPUTS)})")
    what_if.add_argument("--yes", action="store_true",
                         help=f"run a comparison of more than {comparison.CONFIRM_RUNS} runs (refused otherwise)")
    _add_runner_options(what_if, default_out="results/compare/<base>-vs-<variants>")
    what_if.set_defaults(handler=run_compare)

    validate.register(subparsers)
    discover.register(subparsers)


def _add_runner_options(parser: argparse.ArgumentParser, default_out: str = "results/<experiment name>") -> None:
    add_workers_option(parser)
    parser.add_argument("--scheduler", help="Dask scheduler address (e.g. tcp://scheduler-host:8786): run on that cluster")
    add_cluster_options(parser)
    parser.add_argument("--out", type=Path, help=f"results folder (default {default_out}); re-running resumes it")
    parser.add_argument("--max-runs", type=positive_int, default=DEFAULT_MAX_RUNS,
                        help=f"refuse designs needing more runs than this ({DEFAULT_MAX_RUNS})")
    parser.add_argument("--chunk-size", type=positive_int, default=50, help="runs per results file written (50)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one output name")
    return names


def check_run_budget(runs: int, max_runs: int, breakdown: str) -> None:
    if runs > max_runs:
        raise InputError(f"the design needs {runs} runs ({breakdown}), more than --max-runs {max_runs}; "
                         "use fewer samples or replicates, or raise --max-runs")


def run_sweep(args) -> int:
    experiment = load_experiment(args.experiment)
    result = _run_experiment(experiment, args)
    if result is None:
        return 130
    print(f"{result.computed} runs computed, {result.done_before} reused; results in {result.out_dir}")
    fixed = (f"at the weighted medians of {experiment.posterior.file}" if experiment.posterior
             else "at their defaults")
    title = (f"{experiment.name}: {experiment.replicates} replicate(s) per design point, scale {experiment.scale:g}"
             f"{f', to {experiment.end}' if experiment.end else ''}; parameters not varied {fixed}")
    written = write_sweep_summary(result.runs, experiment.outputs.final, result.out_dir, title)
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


def run_sensitivity(args) -> int:
    experiment = load_experiment(args.experiment)
    if experiment.design.kind not in ("sobol", "morris"):
        raise InputError(f"{args.experiment}: design.kind is {experiment.design.kind}; "
                         "orgsim sensitivity needs a sobol or morris design (use orgsim sweep for others)")
    if not 0 < args.conf_level < 1:
        raise InputError(f"--conf-level must be between 0 and 1 (got {args.conf_level})")
    adaptive = None
    if args.adaptive:
        outcome = _run_adaptive(experiment, args)
        if outcome is None:
            return 130
        experiment, result, adaptive = outcome
    else:
        result = _run_experiment(experiment, args)
        if result is None:
            return 130
    runs = sensitivity.with_gaps(experiment, result.runs)
    indices = sensitivity.analyse(experiment, runs, num_resamples=args.resamples, conf_level=args.conf_level,
                                  seed=experiment.design.seed)
    noise = sensitivity.variance_decomposition(runs, experiment.outputs.final, conf_level=args.conf_level,
                                               num_resamples=args.resamples, seed=experiment.design.seed)
    gaps = sensitivity.gap_table(experiment, runs, seed=experiment.design.seed) if experiment.gaps else None
    written = sensitivity.write_analysis(indices, result.out_dir / "analysis", experiment.replicates, noise, adaptive,
                                         gaps)
    print(sensitivity.headline(indices).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nshare of a run's variance: parameters and seed noise; noise left in the replicate means")
    print(noise[["case", "output", "replicates", "parameters", "seed_shared", "seed_point", "noise_in_means",
                 "replicates_needed"]].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    for line in sensitivity.advice(indices, experiment.replicates) or ["no flags: indices in range, distinguishable "
                                                                      "from zero where ranked, ranking stable"]:
        print(f"* {line}")
    if gaps is not None:
        print("\nthe gaps, mean over the design [95% interval of the mean] (q05..q95 of the points)")
        print(gaps.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


def _run_adaptive(experiment: Experiment, args):
    """Double N from design.samples until the indices are stable within --tolerance (or N reaches --max-n), each
    round extending the same results folder; (the experiment at the final N, its runs, the rounds) or None."""
    start = experiment.design.samples
    if experiment.design.kind != "sobol":
        raise InputError(f"--adaptive doubles a Sobol design's N; {args.experiment} has design.kind "
                         f"{experiment.design.kind}")
    if args.max_n & (args.max_n - 1) or args.max_n < start:
        raise InputError(f"--max-n {args.max_n}: give a power of two at least design.samples ({start})")
    sizes = [start << k for k in range((args.max_n // start).bit_length())]
    at = [experiment.model_copy(update={"design": experiment.design.model_copy(update={"samples": n})})
          for n in sizes]
    cases, points = len(experiment_cases(experiment)), len(sample_points(at[-1]))
    check_run_budget(cases * points * experiment.replicates, args.max_runs,
                     f"at --max-n {args.max_n}: {cases} case(s) x {points} point(s) x {experiment.replicates} "
                     "replicate(s)")
    out_dir = args.out or RESULTS_DIR / experiment.name
    outputs = OutputSelection(tuple(experiment.outputs.final), tuple(experiment.outputs.series))
    rounds, before = [], None
    for number, current in enumerate(at):
        print(f"adaptive round {number + 1}: N = {sizes[number]}", flush=True)
        description = {"experiment": current.model_dump(mode="json"), "experiment_source": str(args.experiment),
                       "adaptive": {"sizes": sizes[: number + 1], "tolerance": args.tolerance, "max_n": args.max_n}}
        result = _run(experiment_specs(current, sizes[: number + 1]), out_dir, outputs, description, args)
        if result is None:
            return None
        values = sensitivity.sobol_values(current, sensitivity.with_gaps(current, result.runs))
        if before is not None:
            change = sensitivity.round_changes(before, values, args.tolerance)
            rounds.append(change.assign(previous_n=sizes[number - 1], n=sizes[number]))
            print(change.drop(columns="moved").to_string(index=False, float_format=lambda v: f"{v:.3f}"), flush=True)
            if change["stable"].all():
                print(f"converged at N = {sizes[number]} (tolerance {args.tolerance:g})")
                break
        before = values
    else:
        print(f"not converged by --max-n {args.max_n}: the indices still move by more than {args.tolerance:g}")
    table = pd.concat(rounds, ignore_index=True) if rounds else pd.DataFrame(
        columns=["case", "output", "max_change_S1", "max_change_ST", "rank_changes", "moved", "stable", "previous_n",
                 "n"])
    return current, result, {"rounds": table, "tolerance": args.tolerance, "max_n": args.max_n}


def _run_experiment(experiment: Experiment, args) -> BatchResult | None:
    cases, points = len(experiment_cases(experiment)), len(sample_points(experiment))
    check_run_budget(cases * points * experiment.replicates, args.max_runs,
                     f"{cases} case(s) x {points} point(s) x {experiment.replicates} replicate(s)")
    out_dir = args.out or RESULTS_DIR / experiment.name
    outputs = OutputSelection(tuple(experiment.outputs.final), tuple(experiment.outputs.series))
    description = {"experiment": experiment.model_dump(mode="json"), "experiment_source": str(args.experiment)}
    return _run(experiment_specs(experiment), out_dir, outputs, description, args)


def _run(specs, out_dir: Path, outputs: OutputSelection, description: dict, args) -> BatchResult | None:
    print(f"{len(specs)} runs -> {out_dir}" + (f" on Dask at {args.scheduler}" if args.scheduler else
                                                f" with {args.workers} worker(s)"), flush=True)
    try:
        return run_batch(specs, out_dir, outputs, workers=args.workers, scheduler=args.scheduler,
                         description=description, chunk_size=args.chunk_size, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished runs are saved in {out_dir}; run the same command again to resume")
        return None


def run_compare(args) -> int:
    comparison.check_compare_outputs(args.outputs)
    for name in (args.base, *args.variants):
        check_run_end(load_scenario(name), args.end)
    sets = comparison.load_parameter_sets(args.posterior, args.max_sets, args.seed)
    scenarios = [args.base, *args.variants]
    runs = len(scenarios) * len(sets) * args.replicates
    plan = comparison.describe_runs(sets, args.posterior, args.max_sets, args.replicates, scenarios, args.scale,
                                    args.end)
    check_run_budget(runs, args.max_runs, plan)
    comparison.check_confirmed(plan, runs, args.yes)
    print(f"compare {args.base} against {', '.join(args.variants)}: {plan}", flush=True)
    specs = comparison.compare_specs(scenarios, sets, args.replicates, args.seed, args.scale, args.end)
    out_dir = args.out or RESULTS_DIR / "compare" / _slug("-vs-".join([Path(name).stem for name in scenarios]))
    description = {"compare": {"base": args.base, "variants": args.variants, "posterior": args.posterior,
                               "max_sets": args.max_sets, "replicates": args.replicates, "seed": args.seed,
                               "scale": args.scale, "end": str(args.end) if args.end else None}}
    result = _run(specs, out_dir, OutputSelection(series=comparison.SERIES), description, args)
    if result is None:
        return 130
    context = (f"parameters: {comparison.parameter_source(sets, args.posterior, args.max_sets)}; {args.replicates} "
               f"replicate(s) each; scale {args.scale:g}" + (f"; runs stop {args.end}" if args.end else ""))
    table, shares, written = comparison.write_comparison(out_dir, result.runs, result.series, scenarios, args.outputs,
                                                         context, seed=args.seed)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print("\nshare of runs at each CQC rating per inspection:")
    print(shares.to_string(index=False, float_format=lambda v: f"{v:.0%}"))
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
