"""``orgsim readiness init [--out FILE]`` and ``orgsim readiness PROFILE [options]`` (registered in sim/cli.py).

``init`` asks the profile's questions in the terminal (Enter keeps the default shown) or, when the input is
not a terminal, writes the commented template to answer in an editor. ``PROFILE`` runs the organisation and
writes the board report (sim/readiness/report.py).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from sim.argtypes import add_workers_option, positive_int, scale
from sim.errors import InputError
from sim.readiness.analysis import OUTCOMES

DEFAULT_PROFILE = Path("readiness_profile.yaml")
DEFAULT_POSTERIOR = "calibration/posterior_main.csv"    # the shipped calibration, in this checkout


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "readiness", help="readiness for leaders: describe your organisation, get its likely trajectory and which "
                          "lever to pull first",
        description="orgsim readiness init [--out FILE]: answer the organisation profile's questions (in the "
                    "terminal, or a commented template when not in one). orgsim readiness PROFILE: run the "
                    "organisation over the calibrated parameter sets, with one arm per lever and risk (common random "
                    "numbers), and write a report for a board (HTML, PDF, markdown) into --out.")
    parser.add_argument("profile", metavar="PROFILE", help="the profile (a YAML file), or 'init' to write one")
    parser.add_argument("--out", type=Path, help="init: the profile file to write (readiness_profile.yaml); a report: "
                                                 "its folder (results/readiness/<organisation>); re-running resumes")
    parser.add_argument("--posterior", default=DEFAULT_POSTERIOR,
                        help=f"parameter sets (CSV or parquet, e.g. a calibration posterior; default {DEFAULT_POSTERIOR}),"
                             " or 'defaults' for the documented defaults (uncalibrated)")
    parser.add_argument("--sets", type=positive_int, default=20, help="parameter sets drawn by weight (20)")
    parser.add_argument("--replicates", type=positive_int, default=2,
                        help="replicates per parameter set (2; with --posterior defaults, the one set gets sets x "
                             "replicates)")
    parser.add_argument("--scale", type=scale, default=0.25,
                        help="fraction of staff simulated, counts reported at full size (0.25: keeps the lever "
                             "ranking of full scale, benchmarks/bench_readiness.py)")
    parser.add_argument("--outcome", default="quality_final", choices=list(OUTCOMES), metavar="OUTCOME",
                        help="what the levers are ranked by: " + ", ".join(OUTCOMES) + " (quality_final)")
    parser.add_argument("--seed", type=int, default=20150701, help="base seed (20150701)")
    parser.add_argument("--survey-run", type=Path, metavar="DIR",
                        help="a full-scale run folder (orgsim run --all) whose emulated December 2018 surveys to show "
                             "beside yours (default: a small run computes them)")
    add_workers_option(parser, "runs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or printed ranking")
    parser.set_defaults(handler=run_readiness)


def run_readiness(args) -> int:
    if args.profile == "init":
        return init_profile(args.out or DEFAULT_PROFILE)
    from sim.readiness.report import Options, load_and_check, make_report

    options = Options(posterior=_posterior(args.posterior), sets=args.sets,
                      replicates=args.replicates, scale=args.scale, seed=args.seed, workers=args.workers,
                      outcome=args.outcome, survey_run=args.survey_run, progress=not args.no_progress)
    profile = load_and_check(Path(args.profile), options)
    out = args.out or Path("results") / "readiness" / _slug(profile.organisation)
    try:
        make_report(Path(args.profile), out, options)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished runs are saved in {out / 'runs'}; run the same command again to resume")
        return 130
    return 0


def _posterior(given: str) -> str | None:
    """None for 'defaults'; the shipped posterior from any folder when the default is not overridden."""
    if given == "defaults":
        return None
    if given == DEFAULT_POSTERIOR and not Path(given).is_file():
        from sim.calibration.targets import REPO_ROOT

        return str(REPO_ROOT / DEFAULT_POSTERIOR)
    return given


def init_profile(path: Path) -> int:
    from sim.readiness.profile import ask, template

    if path.exists():
        raise InputError(f"--out {path}: the file exists; choose another --out or delete it")
    if path.suffix not in (".yaml", ".yml"):
        raise InputError(f"--out {path}: a profile is a YAML file; give a name ending .yaml")
    answers = ask() if sys.stdin.isatty() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(template(answers))
    step = "" if answers else " (a template with the defaults: answer its questions in an editor)"
    print(f"wrote {path}{step}; then: orgsim readiness {path}")
    return 0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or "organisation"
