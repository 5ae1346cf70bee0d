"""The model's noise under a calibration's distance: how far is epsilon from what the best particles reach?

ABC-SMC lowers epsilon generation by generation. The model is stochastic, so even a parameter set that fits well
reaches a given distance only on some seeds: its distance over fresh seeds has a spread, and a floor below which
few of its runs go. While epsilon is well above the distances the best particles reach on typical seeds, the
calibration still has much to learn from smaller tolerances. Once epsilon is inside that spread, acceptance falls
steeply (a particle is accepted on its lucky runs) for ever smaller changes of the posterior: then more
replicates per particle (``--replicates``) or more informative statistics do more than another generation
(Wilkinson 2013 reads the tolerance as the model's error).

Method (``noise_floor``): the ``particles`` particles of the calibration's last finished generation with the
smallest distances are re-run on ``seeds`` fresh seeds each (run indices 1..seeds; during the calibration each
ran on its parameter digest, sim/calibration/simulation.py) and every run is scored with the distance the next
generation uses: pyabc's L1 distance, each statistic's deviation times its logged scale weight times its
target weight (sim/calibration/distance.py). As a check of that scoring, each particle is also re-run on its
own seed and scored with its generation's weights, which must give back the distance it was accepted at.
The fresh runs are also scored with the generation's own weights, the distance its epsilon is measured in
(``own_floor_median``): where epsilon is no larger, the generation accepts the seed as much as the parameters, and
the calibration's ``--noise-floor`` rule takes epsilon as having stopped falling usefully (convergence.py).

``orgsim calibrate-noise --name NAME`` writes ``noise_floor.json`` and ``noise_floor.md`` into the
calibration's folder (results/calibration/NAME/), and the record again as ``noise/generation_TTT.json``, one per
generation measured (``noise_floors`` reads them).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np

from .provenance import provenance, write_json
from .simulation import CalibrationModel, particle_key

NOISE_FILE = "noise_floor"
NOISE_DIR = "noise"          # one record per generation measured


def weighted_l1(statistics: dict[str, float], observed: dict[str, float], weights: dict[str, float]) -> float:
    """pyabc's ``AdaptivePNormDistance`` with p = 1: the sum of |statistic - observed| x weight."""
    return float(sum(weights[key] * abs(statistics[key] - observed[key]) for key in observed))


def noise_floor(run_dir: Path, *, particles: int = 5, seeds: int = 12, workers: int = 1, progress=print) -> dict:
    """Re-run the best particles of the last generation on fresh seeds (module doc); write and return the record."""
    import pyabc
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from sim.errors import InputError

    from .distance import logged_scale_weights
    from .smc import SCALE_WEIGHTS_FILE, _load_inputs, _read_json, stored_setup

    db_path, setup_path = run_dir / "abc.db", run_dir / "setup.json"
    if not db_path.is_file() or not setup_path.is_file():
        raise InputError(f"--name: no calibration in {run_dir} (no abc.db and setup.json there)")
    setup = stored_setup(_read_json(setup_path))
    history = pyabc.History(f"sqlite:///{db_path}")
    if history.max_t < 0:
        raise InputError(f"--name: calibration {setup.name} has no finished generation yet")
    t = history.max_t
    logged = logged_scale_weights(run_dir / SCALE_WEIGHTS_FILE)
    if t not in logged:
        raise InputError(f"{run_dir / SCALE_WEIGHTS_FILE}: no scale weights of generation {t} (a calibration started "
                         "before the weights were logged cannot be scored)")
    targets, _ = _load_inputs(setup)
    target_weights = targets.weights(setup.trusts)
    observed = history.observed_sum_stat()

    def weights_of(generation: int) -> dict[str, float]:
        return {key: logged[generation][key] * target_weights.get(key, 1.0) for key in observed}

    scored_with = t + 1 if t + 1 in logged else t          # the next generation's weights, once they are fitted
    accepted_weights, next_weights = weights_of(t), weights_of(scored_with)
    epsilon = float(history.get_all_populations().query("t == @t")["epsilon"].iloc[0])
    best = sorted(history.get_population(t=t).particles, key=lambda p: p.distance)[:particles]
    end = dt.date.fromisoformat(setup.end) if setup.end else None
    model = CalibrationModel(setup.trusts, setup.fixed_params, targets, setup.seed, setup.scale, end, setup.replicates)
    thetas = [dict(p.parameter) for p in best]
    jobs = [(i, particle_key(theta)) for i, theta in enumerate(thetas)] + \
           [(i, run) for i in range(len(thetas)) for run in range(1, seeds + 1)]
    progress(f"calibrate-noise: {len(best)} best particles of generation {t} x {seeds} fresh seeds "
             f"({len(jobs)} particle runs at scale {setup.scale}) on {workers} worker(s)")
    started, run_provenance = time.perf_counter(), provenance()    # the code as it was when the runs started
    runs = Parallel(n_jobs=workers, return_as="generator")(delayed(model)(thetas[i], run) for i, run in jobs)
    statistics = list(tqdm(runs, total=len(jobs), unit="particle", desc="calibrate-noise", disable=None))
    own = statistics[:len(thetas)]
    fresh = np.array([weighted_l1(s, observed, next_weights) for s in statistics[len(thetas):]]).reshape(len(thetas), seeds)
    fresh_own = np.array([weighted_l1(s, observed, accepted_weights)
                          for s in statistics[len(thetas):]]).reshape(len(thetas), seeds)
    rows = []
    for i, particle in enumerate(best):
        rows.append({"accepted_at": float(particle.distance),
                     "own_seed_rescored": weighted_l1(own[i], observed, accepted_weights),
                     "fresh_median": float(np.median(fresh[i])),
                     "fresh_10": float(np.percentile(fresh[i], 10)), "fresh_90": float(np.percentile(fresh[i], 90)),
                     "fresh_below_epsilon": float(np.mean(fresh[i] <= epsilon)),
                     "fresh_own_median": float(np.median(fresh_own[i])),
                     "fresh": fresh[i].round(4).tolist(), "parameters": thetas[i]})
    record = {"kind": "orgsim calibrate-noise", "calibration": setup.name, "generation": t, "epsilon": epsilon,
              "weights_of_generation": scored_with, "particles": len(best), "seeds": seeds,
              "floor_median": float(np.median(fresh)), "floor_10": float(np.percentile(fresh, 10)),
              "floor_90": float(np.percentile(fresh, 90)), "own_floor_median": float(np.median(fresh_own)),
              "own_floor_10": float(np.percentile(fresh_own, 10)), "own_floor_90": float(np.percentile(fresh_own, 90)),
              "rows": rows,
              "wall_time_seconds": round(time.perf_counter() - started, 1), "workers": workers, **run_provenance}
    write_json(run_dir / f"{NOISE_FILE}.json", record)
    (run_dir / NOISE_DIR).mkdir(exist_ok=True)
    write_json(run_dir / NOISE_DIR / f"generation_{t:03d}.json", record)
    (run_dir / f"{NOISE_FILE}.md").write_text(markdown(record))
    progress(summary(record))
    progress(f"wrote {run_dir / NOISE_FILE}.md and .json ({record['wall_time_seconds']:.0f} s)")
    return record


def noise_floors(run_dir: Path) -> dict[int, float]:
    """Generation -> ``own_floor_median`` of every noise record of the calibration in ``run_dir`` (none: {})."""
    import json

    floors = {}
    for path in sorted((Path(run_dir) / NOISE_DIR).glob("generation_*.json")):
        record = json.loads(path.read_text())
        if "own_floor_median" in record:
            floors[int(record["generation"])] = float(record["own_floor_median"])
    return floors


def summary(record: dict) -> str:
    where = ("above the distances the best particles reach on most fresh seeds: smaller tolerances still select "
             "better parameters" if record["epsilon"] > record["floor_90"] else
             "inside the spread of the best particles' distances over fresh seeds: lower tolerances now mostly "
             "select lucky runs; replicates per particle or more informative statistics help more")
    return (f"calibrate-noise: epsilon {record['epsilon']:.1f} (generation {record['generation']}); the best "
            f"{record['particles']} particles on fresh seeds: median distance {record['floor_median']:.1f} "
            f"(10-90% {record['floor_10']:.1f}-{record['floor_90']:.1f}); epsilon is {where}"
            + (f"; under the generation's own distance, in which its epsilon is measured, their median is "
               f"{record['own_floor_median']:.1f}" if "own_floor_median" in record else ""))


def markdown(record: dict) -> str:
    lines = [f"# Noise floor of calibration `{record['calibration']}` after generation {record['generation']}", "",
             f"The {record['particles']} particles of generation {record['generation']} with the smallest distances, "
             f"each re-run on {record['seeds']} fresh seeds and scored with the scale weights of generation "
             f"{record['weights_of_generation']} (sim/calibration/noise.py). Epsilon of generation "
             f"{record['generation']}: **{record['epsilon']:.2f}**.", "", summary(record).removeprefix("calibrate-noise: "),
             "", "| particle | accepted at | its own seed, re-run and re-scored | fresh seeds: median | 10-90% "
             "| share at or below epsilon | fresh seeds, the generation's own weights: median |",
             "|---|---|---|---|---|---|---|"]
    for i, row in enumerate(record["rows"]):
        own = f"{row['fresh_own_median']:.2f}" if "fresh_own_median" in row else "-"
        lines.append(f"| {i + 1} | {row['accepted_at']:.2f} | {row['own_seed_rescored']:.2f} | {row['fresh_median']:.2f} "
                     f"| {row['fresh_10']:.2f}-{row['fresh_90']:.2f} | {row['fresh_below_epsilon']:.2f} | {own} |")
    lines += ["", f"Run at commit {record.get('git_commit')}, {record['wall_time_seconds']:.0f} s on "
                  f"{record['workers']} worker(s)."]
    return "\n".join(lines) + "\n"


def register(subparsers) -> None:
    from sim.argtypes import add_workers_option, positive_int

    cmd = subparsers.add_parser("calibrate-noise", help="how far a calibration's epsilon is from the model's noise",
                                description="Re-run the best particles of a calibration's last generation on fresh seeds "
                                            "and score them with its distance: is epsilon still above what they reach "
                                            "(docs/calibration.md, 'The noise floor')?")
    cmd.add_argument("--name", default="main", help="calibration name (results/calibration/NAME; default main)")
    cmd.add_argument("--results", type=Path, default=Path("results/calibration"),
                     help="where calibrations are (results/calibration)")
    cmd.add_argument("--particles", type=positive_int, default=5, help="best particles to re-run (5)")
    cmd.add_argument("--seeds", type=positive_int, default=12, help="fresh seeds per particle (12)")
    add_workers_option(cmd, "particle runs")
    cmd.set_defaults(handler=cmd_noise)


def cmd_noise(args) -> int:
    from .smc import run_directory

    noise_floor(run_directory(args.name, args.results), particles=args.particles, seeds=args.seeds,
                workers=args.workers)
    return 0
