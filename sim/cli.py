"""The ``orgsim`` command line.

    orgsim run SCENARIO... [--seed N] [--params FILE] [--out DIR] [--scale S]
    orgsim run --all                      (the five trusts; what `make run` calls)

Other subcommands (calibrate, report, sweep, sensitivity, compare, readiness, app) are registered by their packages.
Bad input exits with status 2 and one message naming the file, the field and what is allowed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import sys
from pathlib import Path

from tqdm import tqdm

from sim.argtypes import add_workers_option, positive_int, scale, seed
from sim.context import build_context
from sim.errors import InputError
from sim.experiments.cluster import dask_backend
from sim.params import default_params, load_params
from sim.runner import TRUSTS, AtomicFolder, check_out_path, manifest, simulate, write_run
from sim.scenario import check_run_end, load_scenario

SUBCOMMAND_MODULES = ("sim.calibration.cli", "sim.experiments.cli", "sim.readiness.cli", "sim.app.cli")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


def add_run_parser(sub) -> None:
    run = sub.add_parser("run", help="simulate one or more scenarios and write a run folder")
    run.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="scenario names (scenarios/NAME.yaml) or paths")
    run.add_argument("--all", action="store_true", help=f"the five trusts: {', '.join(TRUSTS)}")
    run.add_argument("--seed", type=seed, default=1, help="base seed (default 1)")
    run.add_argument("--params", type=Path, help="parameter file (YAML/JSON name: value); default: sim/parameters.yaml")
    run.add_argument("--posterior", type=Path, help="calibrated parameter sets: run an ensemble over them")
    run.add_argument("--out", type=Path, help="output folder (default results/run-<time>)")
    run.add_argument("--scale", type=scale, default=1.0, help="fraction of staff simulated, counts rescaled (default 1)")
    run.add_argument("--end", type=_date, help="stop early at this date (YYYY-MM-DD)")
    add_workers_option(run, "runs of a --posterior ensemble")
    run.add_argument("--draws", type=positive_int, help="with --posterior: draws resampled by weight (default: every set)")
    run.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    run.set_defaults(handler=cmd_run)


def cmd_run(args) -> int:
    names = list(TRUSTS) if args.all else args.scenarios
    if not names:
        raise InputError("orgsim run: name at least one scenario, or use --all")
    scenarios = [load_scenario(name) for name in names]
    for scenario in scenarios:
        check_run_end(scenario, args.end)
    out = args.out or Path("results") / f"run-{dt.datetime.now():%Y%m%d-%H%M%S}"
    if args.posterior:
        return _run_posterior(args, names, out)
    params = load_params(args.params) if args.params else default_params()
    weeks = sum(build_context(s, params, args.end).weeks for s in scenarios)
    results = []
    with AtomicFolder(out) as folder, tqdm(total=weeks, unit="wk", desc="simulating", disable=None) as bar:
        for scenario in scenarios:
            bar.set_postfix_str(scenario.name)
            results.append(simulate(scenario, params, args.seed, args.scale, args.end, on_week=bar.update))
        write_run(folder, results, manifest(scenarios, params, args.seed, args.scale,
                                            command=" ".join(sys.argv), end=args.end))
        if not args.no_plots:
            from sim.plots import plot_run
            import pandas as pd
            plot_run(folder, pd.concat([r.timeseries for r in results]), {r.trust: r.summary for r in results})
    _print_summary(results)
    print(f"wrote {out}")
    return 0


def _run_posterior(args, names, out) -> int:
    try:
        from sim.calibration.cli import run_posterior_ensemble
    except ModuleNotFoundError:
        raise InputError("--posterior needs the calibration package (sim/calibration), not installed here") from None
    from sim.calibration.posterior import load_posterior
    from sim.calibration.targets import check_targets_reached, default_targets

    check_out_path(out)
    load_posterior(args.posterior)     # its errors first, then whether --end leaves the targets a value
    check_targets_reached(default_targets(), names, args.end)
    run_posterior_ensemble(args.posterior, names, out, seed=args.seed, workers=args.workers, scale=args.scale,
                           n_draws=args.draws, end=args.end)
    return 0


def census_dates_apply(summary: dict) -> bool:
    """The evaluation's census dates (July 2019, March 2021) mean something only for a programme begun before them."""
    from sim.runner import RPIW_CENSUS

    return dt.date.fromisoformat(summary.get("programme_start", "2015-07-01")) < RPIW_CENSUS


def _print_summary(results) -> None:
    census = [r for r in results if census_dates_apply(r.summary)]
    if census:
        _print_census_table(census)
    for r in results:
        if not census_dates_apply(r.summary):
            _print_horizon_table(r.trust, r.summary)


HORIZON_ROWS = (("l4l_participants", "L4L participants", "{:.0f}"), ("l4l_complete", "L4L complete", "{:.0f}"),
                ("practising_share", "staff practising", "{:.1%}"), ("rpiws", "RPIWs held", "{:.0f}"),
                ("quality", "quality index", "{:.2f}"), ("cqc_band", "CQC band", "{}"))


def _print_horizon_table(trust: str, s: dict) -> None:
    """An organisation whose programme starts after the census dates: its outputs by months after the start."""
    from sim.plots import RATING_NAMES
    from sim.runner import HORIZON_MONTHS

    print(f"{trust} ({s['staff']} staff): months after the programme starts ({s['programme_start']})")
    print(f"{'':18}" + "".join(f"{m:>12}" for m in HORIZON_MONTHS))
    for key, label, form in HORIZON_ROWS:
        cells = []
        for months in HORIZON_MONTHS:
            value = s.get(f"{key}_m{months}")
            text = "-" if value is None else form.format(RATING_NAMES.get(value, value) if key == "cqc_band" else value)
            cells.append(f"{text:>12}")
        print(f"{label:18}" + "".join(cells))
    if any(s.get(f"quality_m{months}") is None for months in HORIZON_MONTHS):
        print("('-': the run ended before then)")


def _print_census_table(results) -> None:
    header = f"{'trust':6} {'staff':>6} {'L4L done':>8} {'in prog':>7} {'ALT':>5} {'RPIWs@19':>8} {'VS@19':>5} {'LT cut':>6}  CQC"
    print(header)
    for r in results:
        s = r.summary
        cqc = " -> ".join(f"{y}:{v}" for y, v in s["cqc"].items())
        print(f"{r.trust:6} {s['staff']:6d} {s['l4l_complete_2021_03']:8.0f} {s['l4l_in_progress_2021_03']:7.0f} "
              f"{s['alt_complete_2021_03']:5.0f} {s['rpiws_2019_07']:8.0f} {s['value_streams_2019_07']:5.0f} "
              f"{s['lead_time_reduction']:6.2f}  {cqc}")


DESCRIPTION = """Agent-based simulation of Lean improvement programmes in five NHS hospital trusts
(the NHS-Virginia Mason partnership, July 2015 - March 2021)."""
EPILOG = """examples:
  orgsim run --all                         the five trusts at the default parameters
  orgsim run --all --posterior calibration/posterior_main.csv --draws 100
                                           the calibrated answer: an ensemble over calibrated parameter sets
  orgsim compare SATH sath_stable_ceo --scale 0.1
                                           a what-if against its baseline
  orgsim COMMAND --help                    the options of one command

Bad input stops with one message naming the file or option, the field and what is allowed (exit status 2).
Guides: README.md, docs/calibration.md, docs/experiments.md."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orgsim", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    add_run_parser(sub)
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that package is not part of this checkout yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with dask_backend(args):    # --cluster: the command runs on a dask-jobqueue cluster, as --scheduler
            return args.handler(args)
    except InputError as exc:
        print(f"orgsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("orgsim: interrupted; nothing partial was left behind as a finished folder", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
