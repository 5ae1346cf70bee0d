"""Where a calibration under way stands (``orgsim calibrate-progress NAME``), read from its database alone.

A calibration of this model runs for many hours over several sessions; between them a researcher asks what its
particles already reach. For one generation (the last finished, by default) this prints and writes
``results/calibration/NAME/progress.md``:

- the generations so far (epsilon, ESS, acceptance, posterior shift, wall time: ``generations.csv``);
- every fitted target: observed, the particles' weighted median and 90% range, and the weighted share of particles
  that meet it by the fit report's rule (a count within 30% or 1, a ratio within 0.10, the rating itself, an
  ordering or choice that holds): a share far below a half says where the calibration still has work to do, or
  where the model cannot reach a target at all;
- every free parameter: weighted median and 90% interval, its width against the prior's (as in the fit report);
- a figure, ``progress.png``: epsilon (with the model's noise floor where it was measured, noise.py) and ESS by
  generation above the share of particles meeting each fitted target
  in every generation, so that one sees which targets the calibration is moving towards and which it is not;
- what the kept simulations (every proposal of every generation whose simulations were kept, accepted or not) reach
  *together*: how many meet every target of a family, every trust's latest CQC rating or every fitted target, against
  how many would if the targets were met independently, and the pairs of targets met together least often against
  that. A check met by each trust's particles but never by one parameter set at once is a tension the shares above
  cannot show (issue #19: the latest rating at all five trusts at once).

It simulates nothing and changes nothing, so it can run beside the calibration. The statistics are the ones pyabc
kept for the distance: the fitted targets only, each the mean over the particle's replicates.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError

from .convergence import ess
from .ensemble import quantiles
from .provenance import file_sha256
from .recycle import load_simulations
from .smc import RESULTS_ROOT, _load_inputs, _read_json, input_path, run_directory, stored_setup


def meets(kind: str, values: np.ndarray, observed, observed_value: float) -> np.ndarray:
    """Per particle, whether its statistic meets the target by the fit report's rule for the target's kind."""
    from .report import COUNT_TOLERANCE, RATIO_TOLERANCE, SMALL_COUNT, _rating   # the report brings matplotlib

    if kind == "count":
        return np.abs(values - observed_value) <= max(COUNT_TOLERANCE * observed_value, SMALL_COUNT)
    if kind == "ratio":
        return np.abs(values - observed_value) <= RATIO_TOLERANCE
    if kind == "ordinal":
        return np.array([_rating(v) == observed for v in values])
    return values == 1.0       # an ordering at rank 1 or the published choice, in every replicate


def target_rows(stats: pd.DataFrame, weights: np.ndarray, targets) -> list[dict]:
    from .report import _rating

    rows = []
    for target in targets.targets:
        if target.id not in stats:
            continue
        values = stats[target.id].to_numpy(dtype=float)
        finite = np.isfinite(values)
        share = float(np.sum(weights[finite] * meets(target.kind, values[finite], target.observed,
                                                     target.observed_value)) / weights.sum())
        q = quantiles(values, weights)          # None where no particle has a value
        low, median, high = (np.nan if q[k] is None else q[k] for k in ("q05", "median", "q95"))
        shown = _rating if target.kind == "ordinal" else (lambda v: f"{v:.3g}")
        rows.append({"target": target.id, "kind": target.kind, "observed": target.observed,
                     "median": shown(median) if np.isfinite(median) else "-",
                     "90% range": f"{shown(low)} - {shown(high)}" if np.isfinite(low) else "-",
                     "meets": share})
    return rows


def progress(name: str, generation: int | None = None, results_root: Path = RESULTS_ROOT) -> tuple[str, Path]:
    """The progress report of calibration NAME at ``generation`` (default: its last): markdown, and where it goes."""
    import pyabc

    from .posterior import Posterior
    from .report import _table, parameter_table

    run_dir = run_directory(name, results_root)
    db, setup_file = run_dir / "abc.db", run_dir / "setup.json"
    if not db.is_file() or not setup_file.is_file():
        raise InputError(f"calibrate-progress: no calibration named '{name}' in {run_dir.parent} (no abc.db and "
                         "setup.json there); `make calibration-next` restores one from calibration/history/")
    setup = stored_setup(_read_json(setup_file))
    for label, stored, sha in (("targets", setup.targets_path, setup.targets_sha256),
                               ("priors", setup.priors_path, setup.priors_sha256)):
        if not input_path(stored).is_file() or file_sha256(input_path(stored)) != sha:
            raise InputError(f"{setup_file}: the {label} file {stored} is not the one calibration '{name}' started with "
                             f"(commit {_read_json(setup_file).get('git_commit', '?')} has it); its particles were "
                             "judged by that one")
    targets, priors = _load_inputs(setup)
    history = pyabc.History(f"sqlite:///{db.resolve()}", create=False)
    last = history.max_t
    if last < 0:
        raise InputError(f"calibrate-progress: calibration '{name}' has no finished generation yet")
    t = last if generation is None else generation
    if not 0 <= t <= last:
        raise InputError(f"--generation: {generation} is not allowed; calibration '{name}' has generations 0-{last}")
    weights, sum_stats = history.get_weighted_sum_stats(t=t)
    weights = np.asarray(weights, dtype=float)
    stats = pd.DataFrame(sum_stats)
    frame, particle_weights = history.get_distribution(m=0, t=t)
    posterior = Posterior(db, frame.reset_index(drop=True), np.asarray(particle_weights) / np.sum(particle_weights),
                          {"priors": [{"name": p.name, "low": p.low, "high": p.high, "log": p.log} for p in priors.priors]},
                          [])
    rows = target_rows(stats, weights, targets)
    params = parameter_table(posterior)
    generations = pd.read_csv(run_dir / "generations.csv") if (run_dir / "generations.csv").is_file() else pd.DataFrame()
    effective = ess(weights)
    met = sum(r["meets"] >= 0.5 for r in rows)
    lines = [f"# Calibration {name}: generation {t} of 0-{last}", "",
             f"Setup: scale {setup.scale}, {setup.population_size} particles a generation, {setup.replicates} "
             f"replicate(s), families {', '.join(setup.fit_families) or 'all'}, targets `{setup.targets_path}`, priors "
             f"`{setup.priors_path}`. Finished: {_read_json(setup_file).get('finished') or 'not yet'}.", "",
             *_under_way(run_dir, last, setup.population_size),
             "## Generations", "",
             _table(generations.drop(columns=["posterior_shift_parameter"], errors="ignore").to_dict("records")), "",
             f"## Fitted targets at generation {t} ({len(weights)} particles, ESS {effective:.0f})", "",
             f"`meets`: the weighted share of particles that meet the target by the fit report's rule. {met} of "
             f"{len(rows)} targets are met by at least half the particles.", "",
             _table([{**r, "meets": f"{r['meets']:.0%}"} for r in rows]), "",
             "## Free parameters", "",
             _table(params[["parameter", "prior", "median", "90% interval", "width / prior width", "verdict"]]
                    .to_dict("records")), "",
             *together(load_simulations(run_dir), targets),
             "![Epsilon, ESS and the share of particles meeting each target, by generation](progress.png)", ""]
    return "\n".join(lines), run_dir / "progress.md"


def shares_by_generation(history, targets) -> pd.DataFrame:
    """The weighted share of each generation's particles meeting each fitted target (targets x generations)."""
    columns = {}
    for t in range(history.max_t + 1):
        weights, sum_stats = history.get_weighted_sum_stats(t=t)
        rows = target_rows(pd.DataFrame(sum_stats), np.asarray(weights, dtype=float), targets)
        columns[t] = {row["target"]: row["meets"] for row in rows}
    return pd.DataFrame(columns)


def progress_figure(name: str, results_root: Path = RESULTS_ROOT) -> Path:
    """``progress.png`` of calibration NAME (module docstring): epsilon and ESS by generation, and the share of
    particles meeting each fitted target in each generation."""
    import pyabc

    from .noise import noise_floors
    from .report import plt
    from .targets import target_family

    run_dir = run_directory(name, results_root)
    targets, _ = _load_inputs(stored_setup(_read_json(run_dir / "setup.json")))
    history = pyabc.History(f"sqlite:///{(run_dir / 'abc.db').resolve()}", create=False)
    shares = shares_by_generation(history, targets)
    populations = history.get_all_populations()
    populations = populations[populations.t >= 0]
    sample_sizes = [ess(np.asarray(history.get_weighted_sum_stats(t=t)[0], dtype=float)) for t in populations.t]
    fig, (top, heat) = plt.subplots(2, 1, figsize=(max(7.0, 4.5 + 0.6 * shares.shape[1]), 2.5 + 0.22 * len(shares)),
                                    gridspec_kw={"height_ratios": [2.2, 0.22 * len(shares)]})
    top.plot(populations.t, populations.epsilon, "o-", color="black", linewidth=2.5, label="epsilon")
    floors = noise_floors(run_dir)       # where --noise-floor (or calibrate-noise) measured the model's noise
    if floors:
        top.plot(list(floors), list(floors.values()), "v", color="tab:red", markersize=8,
                 label="best particles on fresh seeds (median)")
        top.legend(loc="upper right", fontsize=8)
    top.set_ylabel("epsilon")
    top.set_xticks(list(populations.t))
    top.set_xlim(-0.5, shares.shape[1] - 0.5)
    right = top.twinx()
    right.plot(populations.t, sample_sizes, "s--", color="tab:blue")
    right.set_ylabel("ESS", color="tab:blue")
    top.set_title(f"Calibration {name}, by generation")
    image = heat.imshow(shares.to_numpy(dtype=float), aspect="auto", cmap="RdYlGn", vmin=0, vmax=1)
    for (i, j), share in np.ndenumerate(shares.to_numpy(dtype=float)):
        heat.text(j, i, f"{share:.0%}", ha="center", va="center", fontsize=7)
    heat.set_yticks(range(len(shares)), shares.index, fontsize=7)
    heat.set_xticks(range(shares.shape[1]), [str(t) for t in shares.columns])
    heat.set_xlabel("generation")
    families = [target_family(target) for target in shares.index]
    for i in range(1, len(families)):
        if families[i] != families[i - 1]:
            heat.axhline(i - 0.5, color="white", linewidth=2)
    fig.colorbar(image, ax=heat, fraction=0.04, label="share of particles meeting the target")
    fig.tight_layout()
    path = run_dir / "progress.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latest_ratings(targets) -> list[str]:
    """Each trust's latest CQC inspection among the targets ('SATH.cqc.2020'), by the year in its statistic."""
    latest = {}
    for target in targets.targets:
        if target.kind == "ordinal" and target.statistic.startswith("cqc."):
            year = int(target.statistic.split(".")[1])
            if year > latest.get(target.trust, (0, ""))[0]:
                latest[target.trust] = (year, target.id)
    return [target_id for _, target_id in latest.values()]


def simulations_meeting(simulations: pd.DataFrame, targets) -> pd.DataFrame:
    """Per kept simulation (rows) and target (columns), whether it meets the target by the fit report's rule; a
    statistic without a value (a survey measure not comparable) meets nothing."""
    met = {}
    for target in targets.targets:
        column = f"stat:{target.id}"
        if column not in simulations:
            continue
        values = simulations[column].to_numpy(dtype=float)
        finite = np.isfinite(values)
        met[target.id] = np.zeros(len(values), dtype=bool)
        met[target.id][finite] = meets(target.kind, values[finite], target.observed, target.observed_value)
    return pd.DataFrame(met, index=simulations.index)


def together(tables: dict[int, pd.DataFrame], targets, pairs: int = 10, min_expected: float = 3.0) -> list[str]:
    """Markdown: what the kept simulations meet together (module docstring), or nothing if none were kept."""
    from .report import _table
    from .targets import FAMILIES, target_family

    if not tables:
        return []
    met = simulations_meeting(pd.concat(tables.values(), ignore_index=True), targets)
    n, share = len(met), met.mean()
    groups = {FAMILIES[family]: [t for t in met if target_family(t) == family] for family in FAMILIES}
    groups = {"each trust's latest CQC rating": [t for t in latest_ratings(targets) if t in met],
              **groups, "every fitted target": list(met)}
    group_rows = [{"targets met at once": label, "targets": len(ids), "simulations": int(met[ids].all(axis=1).sum()),
                   "if independent": f"{n * float(np.prod(share[ids])):.3g}"} for label, ids in groups.items() if ids]
    rows = []
    ids = list(met)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            expected = n * share[a] * share[b]
            if expected >= min_expected:
                both = int((met[a] & met[b]).sum())
                rows.append({"target": a, "and target": b, "shares": f"{share[a]:.0%}, {share[b]:.0%}",
                             "together": both, "if independent": f"{expected:.3g}", "ratio": both / expected})
    rows = sorted((r for r in rows if r["ratio"] < 1), key=lambda r: r["ratio"])[:pairs]
    return [f"## What the simulations reach together ({n} kept simulations of generation(s) "
            f"{', '.join(map(str, sorted(tables)))})", "",
            "Every proposal the calibration simulated and kept, accepted or not, each statistic the mean of its "
            "replicates, judged by the rule above. `if independent`: the product of the targets' shares times the "
            "simulations; a group met far less often than that holds targets the parameters pull apart (pooling "
            "generations makes targets the calibration improves together look linked; a ratio far below 1 is a "
            "conflict all the same).", "",
            _table(group_rows), "",
            f"Pairs of targets met together least often against independence (ratio below 1; pairs expected at least "
            f"{min_expected:g} times):", "",
            _table([{**r, "ratio": f"{r['ratio']:.2f}"} for r in rows]), ""]


def _under_way(run_dir: Path, last: int, population: int) -> list[str]:
    """A line on the generation under way, if its sampler saved finished jobs (sim/calibration/sampler.py)."""
    from .sampler import JOB_DIR

    jobs = len(list((run_dir / JOB_DIR).glob("*.pkl")))
    if not jobs:
        return []
    return [f"Generation {last + 1} under way: {jobs} of {population} jobs finished and saved in "
            f"`{run_dir / JOB_DIR}` (a `--resume` goes on from them).", ""]


def register(subparsers) -> None:
    cmd = subparsers.add_parser("calibrate-progress", help="where a calibration under way stands, from its database",
                                description="For one generation of calibration NAME (default its last): the "
                                            "generations so far, the share of particles meeting each fitted target, "
                                            "and how far each parameter is pinned down. Simulates nothing; safe "
                                            "beside a running calibration. Writes results/calibration/NAME/progress.md.")
    cmd.add_argument("name", help="the calibration's name (its folder under --results)")
    cmd.add_argument("--generation", type=int, help="which generation (default: the last finished)")
    cmd.add_argument("--results", type=Path, default=RESULTS_ROOT, help="folder of calibration databases")
    cmd.set_defaults(handler=_cmd_progress)


def _cmd_progress(args) -> int:
    text, path = progress(args.name, args.generation, args.results)
    print(text)
    path.write_text(text)
    figure = progress_figure(args.name, args.results)
    print(f"calibrate-progress: written to {path} and {figure.name}", file=sys.stderr)
    return 0
