"""Command-line subcommands ``calibrate`` and ``report``, and the ensemble behind ``run --posterior``.

``register(subparsers)`` adds them to an argparse subparsers object; each sets
``handler=<function(args) -> int>``. Handlers raise sim.errors.InputError for bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim.argtypes import add_workers_option, positive_float, positive_int, seed
from sim.errors import InputError
from sim.experiments.cluster import add_cluster_options

from .ensemble import run_posterior_ensemble  # noqa: F401  (called by orgsim run --posterior)
from .smc import (DEFAULT_KERNEL_SCALING, POSTERIOR_DIR, RESULTS_ROOT, CalibrationSetup, StoppingRules, calibrate,
                  chosen_trusts, run_directory)
from .targets import DEFAULT_TARGETS, TRUST_NAMES, check_targets_reached, load_targets

__all__ = ["register", "run_posterior_ensemble"]


def _comma_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _date(text: str) -> str:
    import datetime as dt

    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


def register(subparsers) -> None:
    cal = subparsers.add_parser("calibrate", help="ABC-SMC calibration against the five trusts (pyabc)",
                                description="Calibrate the shared behavioural parameters and the per-trust "
                                            "programme inputs of calibration/priors.yaml against "
                                            "calibration/targets.yaml with pyabc ABC-SMC.")
    cal.add_argument("--name", default="main", help="calibration name: its database, posterior_NAME.csv and fit "
                                                    "report go to results/calibration/NAME/ (default main)")
    cal.add_argument("--budget", type=positive_int, metavar="SIMS",
                     help="stop after this many particles simulated in total (each simulates every trust)")
    cal.add_argument("--generations", type=positive_int, help="stop after this many generations (this session)")
    cal.add_argument("--max-minutes", type=positive_float,
                     help="wall-time limit of this run (minutes): locally sampling stops there, the generation's "
                          "finished jobs kept for --resume; on a Dask cluster no generation starts that is predicted "
                          "to end after it")
    cal.add_argument("--min-epsilon", type=float, default=0.0, help="stop once epsilon is below this")
    cal.add_argument("--min-acceptance", type=float, default=0.0, help="stop once the acceptance rate is below this")
    cal.add_argument("--converge", type=positive_float, metavar="TOL",
                     help="stop once converged: epsilon's relative change between generations below TOL (e.g. 0.05), "
                          "the posterior shift over one and two generations below --posterior-tol or within its "
                          "resampling noise, and ESS at least "
                          "--min-ess (docs/calibration.md)")
    cal.add_argument("--posterior-tol", type=positive_float, default=0.1,
                     help="with --converge: largest change of any parameter's weighted median or 90%% interval width "
                          "between generations, as a share of its prior range (0.1); a shift within the noise of "
                          "resampling one generation passes too")
    cal.add_argument("--min-ess", type=positive_float, help="with --converge: effective sample size floor "
                                                             "(default half the population)")
    cal.add_argument("--noise-floor", type=positive_int, metavar="K", default=0,
                     help="with --converge: after each generation whose epsilon is still falling, re-run its K best "
                          "particles on --noise-seeds fresh seeds (orgsim calibrate-noise); epsilon no larger than "
                          "their median distance also counts as stopped falling (docs/calibration.md, 'The noise "
                          "floor as a stopping rule')")
    cal.add_argument("--noise-seeds", type=positive_int, default=6, help="with --noise-floor: fresh seeds per particle (6)")
    cal.add_argument("--population", type=positive_int, default=200, help="particles per generation (200)")
    cal.add_argument("--kernel-scaling", type=positive_float,
                     help="variance of each parameter's proposal kernel (in logit coordinates of its prior "
                          "range), times Silverman's (3.0; wider kernels accept less: docs/calibration.md, "
                          "'Proposal kernel'); with --resume, the width from the next generation on (recorded)")
    cal.add_argument("--replicates", type=positive_int, default=1,
                     help="runs of each trust per particle, statistics averaged over them (1)")
    cal.add_argument("--scale", type=positive_float, default=0.25, help="staff scale factor in (0, 1] (0.25)")
    add_workers_option(cal, "simulations")
    cal.add_argument("--scheduler", help="Dask scheduler address (e.g. tcp://10.0.0.5:8786): sample on that cluster")
    add_cluster_options(cal)
    cal.add_argument("--leave-out", metavar="TRUST",
                     help=f"calibrate without this trust ({', '.join(TRUST_NAMES)}); 'all': the five leave-one-trust-out "
                          "calibrations in turn, named NAME_TRUST (NAME default loto), each resumed where it stopped "
                          "and skipped once finished")
    cal.add_argument("--fit", type=_comma_list, metavar="FAMILIES",
                     help="fit only these families of targets, comma-separated (cqc, l4l, alt, rpiws, value_streams, "
                          "lead_time, survey): a first block of a calibration in blocks (default: every fitted target)")
    cal.add_argument("--trusts", type=_comma_list, help="comma-separated trusts to calibrate against (default all five)")
    cal.add_argument("--end", type=_date, help="stop every run at this date, YYYY-MM-DD (quick checks and tests)")
    cal.add_argument("--seed", type=seed, default=20150701, help="base seed (20150701)")
    cal.add_argument("--targets", type=Path, default=DEFAULT_TARGETS, help="targets file (calibration/targets.yaml)")
    cal.add_argument("--priors", type=Path, default=None, help="priors file (calibration/priors.yaml)")
    cal.add_argument("--resume", action="store_true", help="continue the calibration NAME from its last generation")
    cal.add_argument("--export", action="store_true",
                     help="sample nothing: export the last finished generation of calibration NAME (e.g. after a kill)")
    cal.add_argument("--results", type=Path, default=RESULTS_ROOT, help="folder of calibration databases")
    cal.add_argument("--posterior-dir", type=Path,
                     help="where posterior_NAME.csv and its manifest go (default results/calibration/NAME/); "
                          f"'--posterior-dir {POSTERIOR_DIR.name}' replaces the shipped posterior of that name")
    cal.add_argument("--no-report", action="store_true", help="skip the fit report")
    cal.add_argument("--report-draws", type=positive_int, help="ensemble draws of the report (default: every particle)")
    cal.set_defaults(handler=cmd_calibrate)

    rep = subparsers.add_parser("report", help="fit report of a calibrated posterior (markdown + PNG)")
    rep.add_argument("posterior", type=Path, help="posterior file, e.g. calibration/posterior_main.csv")
    rep.add_argument("--out", type=Path, help="report folder (default results/calibration/report_<posterior>)")
    rep.add_argument("--loto", type=Path, nargs="*", default=[],
                     help="leave-one-trust-out posteriors to add as predictions of the left-out trusts")
    rep.add_argument("--draws", type=positive_int, help="ensemble draws (default: every posterior row, weighted)")
    rep.add_argument("--loto-draws", type=positive_int,
                     help="ensemble draws of each leave-one-out prediction (default: --draws)")
    rep.add_argument("--scale", type=positive_float, help="staff scale (default: the calibration's)")
    rep.add_argument("--seed", type=seed, default=1, help="base seed of the ensemble (1)")
    add_workers_option(rep, "ensemble runs")
    rep.add_argument("--scheduler", help="Dask scheduler address: run the ensemble on that cluster")
    add_cluster_options(rep)
    rep.add_argument("--validate", type=Path, metavar="DIR",
                     help="an `orgsim validate --posterior` folder (validate.csv) whose claims the report lists")
    rep.add_argument("--sbc", type=Path, metavar="DIR",
                     help="an `orgsim calibrate-sbc` folder whose rank histograms the report shows")
    rep.add_argument("--noise", type=Path, metavar="FILE",
                     help="an `orgsim calibrate-noise` record (noise_floor.json) of the posterior's calibration: epsilon "
                          "against the distances its best particles reach on fresh seeds")
    rep.set_defaults(handler=cmd_report)

    from .sbc import register as register_sbc

    register_sbc(subparsers)
    from .screen import register as register_screen

    register_screen(subparsers)
    from .blocks import register as register_blocks

    register_blocks(subparsers)
    from .noise import register as register_noise

    register_noise(subparsers)
    from .progress import register as register_progress

    register_progress(subparsers)
    from .recycle import register as register_recycle

    register_recycle(subparsers)


def cmd_calibrate(args) -> int:
    from .known_misses import load_known_misses
    from .priors import DEFAULT_PRIORS
    from .report import write_fit_report

    setup = CalibrationSetup(name=args.name, targets_path=str(args.targets),
                             priors_path=str(args.priors or DEFAULT_PRIORS), leave_out=args.leave_out,
                             scale=args.scale, population_size=args.population, replicates=args.replicates,
                             seed=args.seed, end=args.end, kernel_scaling=args.kernel_scaling or DEFAULT_KERNEL_SCALING,
                             trusts=args.trusts or [],
                             fit_families=args.fit or [])
    rules = StoppingRules(budget=args.budget, generations=args.generations,
                          max_walltime_minutes=args.max_minutes, min_epsilon=args.min_epsilon,
                          min_acceptance_rate=args.min_acceptance, converge=args.converge,
                          posterior_tol=args.posterior_tol, min_ess=args.min_ess,
                          noise_particles=args.noise_floor, noise_seeds=args.noise_seeds)
    if rules.noise_particles and rules.converge is None:
        raise InputError("orgsim calibrate: --noise-floor is part of the convergence rule: give --converge too")
    if not (args.resume or args.export) and rules.budget is None and rules.generations is None and rules.max_walltime_minutes is None \
            and rules.min_epsilon <= 0 and rules.min_acceptance_rate <= 0 and rules.converge is None:
        raise InputError("orgsim calibrate: give a stopping rule: --converge, --budget, --generations, --max-minutes, "
                         "--min-epsilon or --min-acceptance")
    if args.leave_out == "all":
        return _calibrate_every_leave_out(args, setup, rules)
    _check_trusts_and_end(args)
    if not args.no_report:
        load_known_misses()     # the report reads it after the calibration: fail now, not in an hour
    try:
        posterior = calibrate(setup, rules, workers=args.workers, scheduler=args.scheduler, resume=args.resume,
                              export_only=args.export, results_root=args.results,
                              posterior_dir=args.posterior_dir or run_directory(args.name, args.results),
                              kernel_scaling=args.kernel_scaling if args.resume else None)
    except KeyboardInterrupt:
        return 130
    print(f"wrote {posterior} and {posterior.with_name(posterior.stem + '.manifest.json').name}")
    if not args.no_report:
        report = write_fit_report(posterior, Path(args.results) / args.name / "report", workers=args.workers,
                                  n_draws=args.report_draws, scheduler=args.scheduler, targets_path=args.targets,
                                  trusts=args.trusts or TRUST_NAMES, end=args.end)
        print(f"wrote {report}")
    return 0


def _calibrate_every_leave_out(args, setup: CalibrationSetup, rules: StoppingRules) -> int:
    """The five leave-one-trust-out calibrations in turn, each in results/calibration/NAME_TRUST/: a finished one
    is skipped, one with a database is resumed, the others start. No fit report here: the main report predicts each
    left-out trust (orgsim report ... --loto)."""
    import copy
    import dataclasses

    from .smc import is_finished

    base = "loto" if args.name == "main" else args.name
    for trust in TRUST_NAMES:
        name = f"{base}_{trust}"
        one = copy.copy(args)
        one.leave_out, one.name = trust, name
        run_directory(name, args.results)   # the name is usable
        if is_finished(name, args.results) and not args.export:
            print(f"calibrate: {name} finished earlier; skipped (delete {Path(args.results) / name} to redo it)")
            continue
        one.resume = args.resume or (Path(args.results) / name / "abc.db").is_file()
        _check_trusts_and_end(one)
        print(f"calibrate: leave-one-trust-out without {trust} -> {Path(args.results) / name}"
              + (" (resumed)" if one.resume else ""), flush=True)
        try:
            posterior = calibrate(dataclasses.replace(setup, name=name, leave_out=trust), rules, workers=args.workers,
                                  scheduler=args.scheduler, resume=one.resume, export_only=args.export,
                                  results_root=args.results,
                                  posterior_dir=args.posterior_dir or run_directory(name, args.results),
                                  kernel_scaling=args.kernel_scaling if one.resume else None)
        except KeyboardInterrupt:
            return 130
        print(f"wrote {posterior} and {posterior.with_name(posterior.stem + '.manifest.json').name}")
    return 0


def _check_trusts_and_end(args) -> None:
    """Some trust is left to calibrate against, and --end leaves every target something to compare."""
    import datetime as dt

    from sim.scenario import check_run_end, load_scenario

    trusts = chosen_trusts(args.trusts, args.leave_out)
    if not trusts:
        raise InputError(f"--leave-out {args.leave_out}: it is the only trust in --trusts, so no trust is left to "
                         "calibrate against; add trusts to --trusts or drop --leave-out")
    if args.end and not args.resume:
        end = dt.date.fromisoformat(args.end)
        for trust in trusts:
            check_run_end(load_scenario(trust), end)
        check_targets_reached(load_targets(args.targets), trusts, end)


def cmd_report(args) -> int:
    from sim.runner import check_out_path

    from .report import write_fit_report

    out = args.out or RESULTS_ROOT / f"report_{args.posterior.stem.removeprefix('posterior_')}"
    check_out_path(out)
    report = write_fit_report(args.posterior, out, workers=args.workers, scale=args.scale, n_draws=args.draws,
                              seed=args.seed, scheduler=args.scheduler, loto=args.loto,
                              loto_draws=args.loto_draws, validate_dir=args.validate, sbc_dir=args.sbc,
                              noise_file=args.noise)
    print(f"wrote {report}", file=sys.stdout)
    return 0
