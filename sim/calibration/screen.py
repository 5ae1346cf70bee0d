"""Screening the calibration's free parameters: which of them do the fitted targets inform?

ABC-SMC with a multivariate normal kernel does not converge with 28 free parameters (docs/calibration.md,
"Proposal kernel"), so a calibration must free fewer. Factor fixing (Saltelli et al. 2008, ch. 3): a
parameter whose changes over its whole prior range barely move the calibration's distance can be fixed
at its documented default without changing what the targets say about the others.

Method: Morris elementary effects (Morris 1991) with mu* (Campolongo, Cariboni and Saltelli 2007), by SALib's
``ProblemSpec``: ``trajectories`` one-at-a-time trajectories on a ``levels``-level grid over the priors
(calibration/priors.yaml), each point simulating every calibrated trust as one calibration particle does
(sim/calibration/simulation.py, its seed from the particle's values). Outputs: the ABC distance (L1 over
the fitted targets, each deviation divided by its root-mean-square deviation from the observation over all
the screen's runs, times the target's weight: pyabc's first-generation distance) and that distance split
by family of statistic (CQC ratings, L4L counts, ALT counts, RPIWs, value streams, lead time). Every point
of a trajectory runs with the same seeds (common random numbers, run index = the trajectory's), so an
elementary effect compares two runs that differ in one parameter, not in their luck; the noise left is the
model's divergence once a parameter has changed its course. ``mu_star_conf`` (bootstrap) says how far to
trust each value, and a parameter is only "not informed" if its mu* is small beside the largest and its
interval says so.

Writes into ``out``: ``runs.csv`` (every point: parameters, statistics, distances), ``screen.csv`` (per
output and parameter: mu*, its confidence half-width, sigma, mu* as a share of the output's largest),
``screen.md``, ``screen.png`` and ``manifest.json``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from sim.params import default_params

from .priors import DEFAULT_PRIORS, PriorSet, load_priors
from .provenance import file_sha256, provenance, write_json
from .simulation import CalibrationModel
from .smc import portable_path
from .targets import DEFAULT_TARGETS, FAMILIES, TRUST_NAMES, TargetSet, load_targets, target_family


def family(target_id: str) -> str:
    """The family of a target's statistic: 'SASH.cqc.2019' -> CQC ratings, 'SASH.l4l_complete_2021_03' -> L4L counts."""
    return FAMILIES[target_family(target_id)]


def problem_spec(priors: PriorSet):
    from SALib import ProblemSpec

    return ProblemSpec({"names": priors.names, "bounds": [[p.low, p.high] for p in priors.priors]})


def distances(stats: pd.DataFrame, observed: dict[str, float], weights: dict[str, float]) -> pd.DataFrame:
    """Per run, the weighted L1 distance over all targets and per family (module doc)."""
    ids = [k for k in observed if k in stats]
    deviation = (stats[ids] - pd.Series(observed)[ids]).abs()
    rmsd = np.sqrt(((stats[ids] - pd.Series(observed)[ids]) ** 2).mean()).replace(0.0, 1.0)
    scaled = deviation / rmsd * pd.Series(weights)[ids]
    out = pd.DataFrame({"distance": scaled.sum(axis=1)})
    for name in dict.fromkeys(family(k) for k in ids):
        out[f"distance {name}"] = scaled[[k for k in ids if family(k) == name]].sum(axis=1)
    return out


def screen(out: Path, *, trajectories: int = 8, levels: int = 4, scale: float = 0.5, seed: int = 20150701,
           workers: int = 1, trusts=TRUST_NAMES, targets_path=DEFAULT_TARGETS, priors_path=DEFAULT_PRIORS,
           end=None, progress=print) -> pd.DataFrame:
    """Run the screening (module doc) and write its files into ``out``; returns the screen table."""
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    targets: TargetSet = load_targets(targets_path).for_scale(scale).fitted()
    priors = load_priors(priors_path).for_trusts(trusts)
    spec = problem_spec(priors)
    spec.sample_morris(trajectories, num_levels=levels, seed=seed)
    points = pd.DataFrame(spec.samples, columns=priors.names)
    model = CalibrationModel(trusts, default_params(), targets, seed, scale, end)
    progress(f"calibrate-screen: {len(points)} points ({trajectories} trajectories x {len(priors.names) + 1}) "
             f"x {len(model.trusts)} trusts at scale {scale} on {workers} worker(s)")
    started = time.perf_counter()
    per_trajectory = len(priors.names) + 1   # common random numbers: one seed per trajectory
    runs = Parallel(n_jobs=workers, return_as="generator")(delayed(model)(row, i // per_trajectory)
                                                           for i, row in enumerate(points.to_dict("records")))
    rows = list(tqdm(runs, total=len(points), unit="point", desc="calibrate-screen", disable=None))
    stats = pd.DataFrame(rows)
    dist = distances(stats, targets.observed(model.trusts), targets.weights(model.trusts))
    table = []
    for output in dist.columns:
        spec.set_results(dist[output].to_numpy())
        result = spec.analyze_morris(num_levels=levels, seed=seed).analysis
        largest = max(float(np.max(result["mu_star"])), 1e-12)
        for i, name in enumerate(priors.names):
            table.append({"output": output, "parameter": name, "mu_star": float(result["mu_star"][i]),
                          "mu_star_conf": float(result["mu_star_conf"][i]), "sigma": float(result["sigma"][i]),
                          "share_of_largest": float(result["mu_star"][i]) / largest})
    table = pd.DataFrame(table)
    out.mkdir(parents=True, exist_ok=True)
    pd.concat([points, stats, dist], axis=1).to_csv(out / "runs.csv", index=False)
    table.to_csv(out / "screen.csv", index=False)
    _plot(table, out / "screen.png")
    (out / "screen.md").write_text(_markdown(table, len(points), trajectories, levels, scale))
    write_json(out / "manifest.json", {
        "kind": "orgsim calibrate-screen", "trajectories": trajectories, "levels": levels, "scale": scale,
        "seed": seed, "trusts": list(model.trusts), "points": len(points),
        "wall_time_seconds": round(time.perf_counter() - started, 1), "workers": workers,
        "targets_file": portable_path(str(targets_path)), "targets_sha256": file_sha256(targets_path),
        "priors_file": portable_path(str(priors_path)), "priors_sha256": file_sha256(priors_path), **provenance()})
    progress(f"wrote {out / 'screen.md'}, screen.png, screen.csv, runs.csv ({time.perf_counter() - started:.0f} s)")
    return table


def _markdown(table: pd.DataFrame, points: int, trajectories: int, levels: int, scale: float) -> str:
    main = table[table["output"] == "distance"].sort_values("mu_star", ascending=False)
    families = [o for o in table["output"].unique() if o != "distance"]
    wide = table.pivot(index="parameter", columns="output", values="share_of_largest")
    lines = ["# Screening the calibration's free parameters (Morris mu*)", "",
             f"{points} points ({trajectories} trajectories, {levels} levels) at scale {scale}; every point simulates "
             "every calibrated trust once. mu* of the ABC distance over the fitted targets, with its bootstrap 95% "
             "half-width, and, per family of targets, mu* as a share of that family's most influential parameter.",
             "", "![mu*](screen.png)", "",
             "| parameter | mu* | +/- | sigma | share of largest | " + " | ".join(families) + " |",
             "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in families) + " |"]
    for _, row in main.iterrows():
        shares = " | ".join(f"{wide.loc[row['parameter'], f]:.2f}" for f in families)
        lines.append(f"| {row['parameter']} | {row['mu_star']:.3g} | {row['mu_star_conf']:.2g} | {row['sigma']:.3g} | "
                     f"{row['share_of_largest']:.2f} | {shares} |")
    return "\n".join(lines) + "\n"


def _plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main = table[table["output"] == "distance"].sort_values("mu_star")
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(main) + 1.2))
    ax.barh(main["parameter"], main["mu_star"], xerr=main["mu_star_conf"], color="tab:blue", alpha=0.8)
    ax.set_xlabel("Morris mu* of the ABC distance (bars: bootstrap 95% half-width)")
    ax.set_title("Which free parameters move the calibration's distance", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def register(subparsers) -> None:
    from sim.argtypes import add_workers_option, positive_float, positive_int
    from sim.argtypes import seed as seed_type

    cmd = subparsers.add_parser("calibrate-screen", help="which free parameters the fitted targets inform (Morris)",
                                description="Morris elementary effects of every free parameter of a priors file "
                                            "on the ABC distance over the fitted targets, and per family of targets "
                                            "(docs/calibration.md, 'Screening the free parameters').")
    cmd.add_argument("--trajectories", type=positive_int, default=8, help="Morris trajectories r (8)")
    cmd.add_argument("--levels", type=positive_int, default=4, help="grid levels (4)")
    cmd.add_argument("--scale", type=positive_float, default=0.5, help="staff scale (0.5, the calibration's)")
    cmd.add_argument("--trusts", type=lambda text: [t.strip() for t in text.split(",") if t.strip()],
                     help="comma-separated trusts (default all five)")
    cmd.add_argument("--end", help="stop every run at this date, YYYY-MM-DD (tests)")
    cmd.add_argument("--targets", type=Path, default=DEFAULT_TARGETS, help="targets file (calibration/targets.yaml)")
    cmd.add_argument("--priors", type=Path, default=DEFAULT_PRIORS, help="priors file (calibration/priors.yaml)")
    cmd.add_argument("--seed", type=seed_type, default=20150701, help="base seed (20150701)")
    cmd.add_argument("--out", type=Path, default=Path("results/calibration/screen"),
                     help="output folder (results/calibration/screen)")
    add_workers_option(cmd, "simulations")
    cmd.set_defaults(handler=cmd_screen)


def cmd_screen(args) -> int:
    import datetime as dt

    from sim.errors import InputError
    from sim.runner import check_out_path

    from .smc import chosen_trusts

    trusts = chosen_trusts(args.trusts or [], None)
    end = None
    if args.end:
        try:
            end = dt.date.fromisoformat(args.end)
        except ValueError:
            raise InputError(f"--end: '{args.end}' is not a date (YYYY-MM-DD)") from None
    if args.levels < 2:
        raise InputError(f"--levels: {args.levels} is too few; give at least 2")
    check_out_path(args.out)
    screen(args.out, trajectories=args.trajectories, levels=args.levels, scale=args.scale, seed=args.seed,
           workers=args.workers, trusts=trusts, end=end, targets_path=args.targets, priors_path=args.priors)
    return 0
