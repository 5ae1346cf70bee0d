"""Leave-one-trust-out posteriors from a calibration's own simulations, without new runs (``orgsim calibrate-loto``).

A leave-one-trust-out calibration asks what the other four trusts alone say about the shared parameters, so that
the left-out trust's outcomes are predicted, never fitted. Running five more ABC-SMC calibrations of the model at
full scale would cost five times the main one (about 13 hours each on two cores). Every simulation of the main
calibration ran all five trusts, and its sampler keeps them all, rejected ones included (sampler.py,
``simulations/``), so the four trusts' statistics of every proposal are already known. The leave-one-trust-out
posterior is the ABC posterior of the same prior and distance over the other four trusts,

    p_k(theta) ~ prior(theta) P(d_k(x) <= eps_k | theta),

and the pooled simulations of the calibration's generations s, each drawn from that generation's proposal q_s (the
prior for generation 0; the defensive kernel fitted to generation s-1's population after it: transition.py), are
an importance sample of it with the balance-heuristic weights of multiple importance sampling (Veach and Guibas
1995; Owen and Zhou 2000)

    w_i = prior(theta_i) / sum_s (n_s / N) q_s(theta_i),

every simulation with d_k(x_i) <= eps_k keeping its w_i. As PSIS-LOO does for MCMC posteriors (Vehtari, Gelman and
Gabry 2017), the left-out data are removed by reweighting instead of refitting; the effective sample size says how
well the main calibration's proposals cover the leave-one-out posterior, and a thin one is reported as such.

- **Distance.** The calibration's own: the L1 sum of target weight x scale weight x |statistic - observed| over the
  fitted targets of the four trusts (``TargetSet.for_trusts``), orderings and the pooled lead time recomputed over
  the four from each run's components (``targets.statistics_over``; per replicate, then averaged, as the
  calibration's statistics are). Scale weights by pyabc's rule for the last generation (one over the root mean
  square deviation from the observation, ``pyabc.distance.rmsd``, over all simulations of the generation before
  it, or of the last generation itself where those were not kept), applied to the four-trust statistics.
- **Tolerance.** eps_k makes the prior probability of acceptance, P_prior(d_k <= eps_k), equal to the main
  calibration's, P_prior(d <= eps_T) at its last epsilon, both estimated with the same weights: the same
  stringency relative to what the prior predicts.
- **Checks** (``recycle_check.json``): the weights of the last population recomputed from the proposals (pyabc's
  own importance weights, to rounding); the last generation's distances recomputed from the statistics; its scale
  weights refitted by the rule above; and the main posterior recomputed the same way (all simulations, eps_T) against
  the calibration's last population (the shift of a weighted median or 90% width, in prior-range units, beside the
  shift between two resamples of that population).

The same pool at the main calibration's last epsilon re-estimates its posterior from every kept simulation, not
only the last generation's (adaptive multiple importance sampling recycles its past simulations so: Cornuet, Marin,
Mira and Robert 2012): ``posterior_pooled_NAME.csv``, a larger sample of the same ABC posterior, written beside the
leave-one-out ones for comparison (it is not what the calibration exports).

Only simulations that carry their runs' components (every one since 27 November 2026) can be re-scored over four
trusts; generations are pooled with the counts of those used.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError

from .simulation import COMPONENT_PREFIX
from .targets import TRUST_NAMES, TargetSet, statistics_over

COMPONENT = f"stat:{COMPONENT_PREFIX}"   # a kept simulation's column of a component (simulation.py)
CHECK_FILE = "recycle_check.json"


# --- the estimator's arithmetic ---------------------------------------------------------------------------------

def balance_weights(prior_density: np.ndarray, proposal_densities: list[np.ndarray], counts: list[int]) -> np.ndarray:
    """Multiple importance sampling weights (balance heuristic): prior / sum_s (n_s / N) q_s, for draws pooled from
    proposals q_s with n_s draws each (``proposal_densities[s]`` evaluated at every pooled draw)."""
    total = float(sum(counts))
    mixture = sum((n / total) * np.asarray(q, dtype=float) for n, q in zip(counts, proposal_densities))
    return np.asarray(prior_density, dtype=float) / mixture


def weighted_quantile(values: np.ndarray, weights: np.ndarray, probability: float) -> float:
    """The smallest value whose weighted distribution function reaches ``probability``."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(np.asarray(weights, dtype=float)[order]) / np.sum(weights)
    reached = np.searchsorted(cumulative, probability * (1 - 1e-12))   # a sum's rounding does not skip a value
    return float(np.asarray(values)[order][min(reached, len(values) - 1)])


def matched_tolerance(main_distance: np.ndarray, main_epsilon: float, distance: np.ndarray,
                      weights: np.ndarray) -> tuple[float, float]:
    """(eps, p): p = P_prior(main distance <= main epsilon) under ``weights``; eps the tolerance of ``distance`` that
    the prior meets with the same probability."""
    finite = np.isfinite(distance)
    p = float(np.sum(weights[main_distance <= main_epsilon]) / np.sum(weights))
    return weighted_quantile(distance[finite], weights[finite], p * np.sum(weights) / np.sum(weights[finite])), p


def rmsd_scale_weights(stats: pd.DataFrame, observed: dict[str, float]) -> dict[str, float]:
    """pyabc's adaptive scale weights (``AdaptivePNormDistance.fit_scales`` with ``pyabc.distance.rmsd``): one over
    each statistic's root mean square deviation from its observation, 0 where that is 0."""
    from pyabc.distance import rmsd

    keys = list(observed)
    scales = rmsd(samples=stats[keys].to_numpy(dtype=float), s0=np.array([observed[k] for k in keys]), s_ids=keys)
    return {k: 0.0 if np.isclose(scale, 0) else 1.0 / scale for k, scale in zip(keys, scales)}


def l1_distance(stats: pd.DataFrame, observed: dict[str, float], weights: dict[str, float]) -> np.ndarray:
    """The calibration's distance (``noise.weighted_l1``, pyabc's L1) of every row of ``stats``."""
    from .noise import weighted_l1

    return np.array([weighted_l1(row, observed, weights) for row in stats.to_dict("records")])


# --- reading a calibration ----------------------------------------------------------------------------------------

def load_simulations(run_dir: Path) -> dict[int, pd.DataFrame]:
    """Every stored generation's simulations (sampler.py), by generation."""
    from .sampler import SIMULATIONS_DIR

    tables = {}
    for path in sorted((run_dir / SIMULATIONS_DIR).glob("generation_*.csv.gz")):
        tables[int(path.name.split("_")[1].split(".")[0])] = pd.read_csv(path)
    return tables


def needs_components(targets: TargetSet, trusts) -> bool:
    """Whether re-scoring over fewer trusts needs the runs' components (an ordering or a pooled target)."""
    return any(t.kind == "ordering" or t.pooled is not None for t in targets.for_trusts(trusts))


def has_components(table: pd.DataFrame) -> np.ndarray:
    """Rows simulated with their runs' components (older simulations lack every such column)."""
    columns = [c for c in table.columns if c.startswith(COMPONENT)]
    if not columns:
        return np.zeros(len(table), dtype=bool)
    return table[columns].notna().any(axis=1).to_numpy()


def proposal_density(history, priors, setup, t: int, params: pd.DataFrame) -> np.ndarray:
    """Generation ``t``'s proposal density at ``params`` (one row per draw, the free parameters' columns)."""
    from .smc import kernel_scaling_at
    from .transition import DefensiveTransition

    if t == 0:
        return prior_density(priors, params)
    population, weights = history.get_distribution(m=0, t=t - 1)
    transition = DefensiveTransition(priors, scaling=kernel_scaling_at(setup, t))
    transition.fit(population, np.asarray(weights, dtype=float) / np.sum(weights))
    return np.asarray(transition.pdf(params[list(population.columns)]), dtype=float)


def prior_density(priors, params: pd.DataFrame) -> np.ndarray:
    from .transition import prior_pdf

    return prior_pdf(priors.to_pyabc(), params)


def replicate_count(table: pd.DataFrame) -> int:
    indices = {int(c[len(COMPONENT):].split(".")[0]) for c in table.columns if c.startswith(COMPONENT)}
    return len(indices)


def statistics_without(table: pd.DataFrame, trusts, targets: TargetSet) -> pd.DataFrame:
    """Every row's statistics of the targets of ``trusts`` (module doc): per-trust ones as simulated, orderings and
    pooled ones recomputed over ``trusts`` from each replicate's components and averaged over the replicates."""
    ids = [t.id for t in targets.for_trusts(trusts)]
    replicates = replicate_count(table)
    columns = [c for c in table.columns if c.startswith("stat:")]
    rows = []
    for record in table[columns].to_dict("records"):
        per_trust = {c[5:]: v for c, v in record.items() if not c.startswith(COMPONENT)}
        each = [] if replicates else [statistics_over(trusts, per_trust, {}, targets)]   # no cross-trust target
        for r in range(replicates):
            prefix = f"{COMPONENT}{r}."
            components = {c[len(prefix):]: v for c, v in record.items() if c.startswith(prefix)}
            each.append(statistics_over(trusts, per_trust, components, targets))
        rows.append({key: float(np.mean([stats[key] for stats in each])) for key in ids})
    return pd.DataFrame(rows, columns=ids, index=table.index)


# --- the command ----------------------------------------------------------------------------------------------------

def recycle(run_dir: Path, leave_out=TRUST_NAMES, out_dir: Path | None = None, progress=print) -> dict:
    """Write ``posterior_loto_<TRUST>.csv`` (and manifests) for every trust of ``leave_out``, and the checks, into
    ``out_dir`` (default ``run_dir/loto``); returns the check record."""
    import pyabc

    from .convergence import compare_generations, ess, shift_noise
    from .distance import logged_scale_weights
    from .provenance import provenance, write_json
    from .smc import SCALE_WEIGHTS_FILE, _load_inputs, _read_json, stored_setup

    started = time.perf_counter()
    db_path, setup_path = run_dir / "abc.db", run_dir / "setup.json"
    if not db_path.is_file() or not setup_path.is_file():
        raise InputError(f"calibrate-loto: no calibration in {run_dir} (no abc.db and setup.json there)")
    setup = stored_setup(_read_json(setup_path))
    if setup.leave_out:
        raise InputError(f"calibrate-loto: {setup.name} already leaves {setup.leave_out} out; give the calibration "
                         "of every trust")
    unknown = [t for t in leave_out if t not in setup.trusts]
    if unknown:
        raise InputError(f"--leave-out: {', '.join(unknown)} not among {setup.name}'s trusts "
                         f"({', '.join(setup.trusts)})")
    history = pyabc.History(f"sqlite:///{db_path.resolve()}", _id=1)
    last = history.max_t
    tables = load_simulations(run_dir)
    if last < 0 or last not in tables:
        raise InputError(f"calibrate-loto: {run_dir} needs the simulations of its last finished generation "
                         f"(simulations/generation_TTT.csv.gz; generation {last} is its last, and simulations are "
                         f"kept for generations {sorted(tables) or 'none'})")
    targets, priors = _load_inputs(setup)
    logged = logged_scale_weights(run_dir / SCALE_WEIGHTS_FILE)
    epsilon = float(history.get_all_populations().query("t == @last")["epsilon"].iloc[0])
    free = [p.name for p in priors.priors]

    # the pool: generations' simulations that can be re-scored over fewer trusts
    usable = has_components if needs_components(targets, setup.trusts) else \
        (lambda table: np.ones(len(table), dtype=bool))
    used = {t: table.loc[usable(table)].reset_index(drop=True) for t, table in tables.items() if t <= last}
    used = {t: table for t, table in used.items() if len(table)}
    if last not in used:
        raise InputError(f"calibrate-loto: generation {last}'s simulations carry no components (simulated before "
                         "they were kept); run another generation")
    pool = pd.concat([table.assign(generation=t) for t, table in used.items()], ignore_index=True)
    params = pool[[f"param:{name}" for name in free]].set_axis(free, axis=1)
    counts = [len(used[t]) for t in sorted(used)]
    progress(f"calibrate-loto: {setup.name}: {len(pool)} simulations of generations {sorted(used)} "
             f"(proposal densities of each)")
    densities = [proposal_density(history, priors, setup, t, params) for t in sorted(used)]
    weights = balance_weights(prior_density(priors, params), densities, counts)

    # checks against what pyabc recorded
    checks = _checks(history, priors, setup, targets, tables, logged, last, epsilon, free)
    observed_all = targets.observed(setup.trusts)
    main_stats = pool[[f"stat:{key}" for key in observed_all]].set_axis(list(observed_all), axis=1)
    main_weights = {k: logged[last][k] * w for k, w in targets.weights(setup.trusts).items()}
    main_distance = l1_distance(main_stats, observed_all, main_weights)
    accepted = main_distance <= epsilon
    final, final_weights = history.get_distribution(m=0, t=last)
    recycled = (params.loc[accepted].reset_index(drop=True), weights[accepted])
    checks["main_posterior"] = {
        **compare_generations((final, np.asarray(final_weights)), recycled, priors),
        "resampling_noise": shift_noise(final, np.asarray(final_weights), priors),
        "accepted": int(accepted.sum()), "ess": ess(weights[accepted]), "epsilon": epsilon}
    progress(f"calibrate-loto: the main posterior recomputed from {int(accepted.sum())} simulations (ESS "
             f"{checks['main_posterior']['ess']:.0f}) is {checks['main_posterior']['posterior_shift']:.3f} from the "
             f"last population (two resamples of it: {checks['main_posterior']['resampling_noise']:.3f})")

    out_dir = Path(out_dir) if out_dir else run_dir / "loto"
    out_dir.mkdir(parents=True, exist_ok=True)
    pooled = {"source_calibration": setup.name, "generations_pooled": sorted(used), "simulations_pooled": len(pool)}
    _write_posterior(out_dir / f"posterior_pooled_{setup.name}.csv", params.loc[accepted], weights[accepted], setup,
                     priors, setup.trusts, None, {
                         **pooled, "status": f"calibration {setup.name}'s posterior at its last epsilon re-estimated "
                                             "from every kept simulation (orgsim calibrate-loto; recycle.py)",
                         "epsilon": epsilon, "accepted": int(accepted.sum()), "ess": ess(weights[accepted])})
    results = {}
    # pyabc fits generation T's scale weights on generation T-1's simulations; where those were not kept (a
    # calibration's first generation with kept simulations), on generation T's own
    scale_from = last - 1 if last - 1 in used else last
    for trust in leave_out:
        trusts = [t for t in setup.trusts if t != trust]
        observed = targets.observed(trusts)
        scale = rmsd_scale_weights(statistics_without(used[scale_from], trusts, targets), observed)
        distance_weights = {k: scale[k] * w for k, w in targets.weights(trusts).items()}
        distance = l1_distance(statistics_without(pool, trusts, targets), observed, distance_weights)
        eps, p = matched_tolerance(main_distance, epsilon, distance, weights)
        keep = distance <= eps
        by_generation = pool.loc[keep, "generation"].value_counts().sort_index()
        result = {"leave_out": trust, "epsilon": eps, "prior_acceptance_probability": p,
                  "scale_weights_from_generation": scale_from,
                  "accepted": int(keep.sum()), "ess": ess(weights[keep]),
                  "accepted_by_generation": {int(k): int(v) for k, v in by_generation.items()}}
        csv = out_dir / f"posterior_loto_{trust}.csv"
        _write_posterior(csv, params.loc[keep], weights[keep], setup, priors, trusts, trust, {
            **pooled, **result, "status": f"leave-one-trust-out posterior recomputed from calibration {setup.name}'s "
                                          "simulations (orgsim calibrate-loto; sim/calibration/recycle.py)",
            "method": "ABC importance sampling over every kept simulation of the calibration (multiple importance "
                      "sampling, balance heuristic); the calibration's distance over the other trusts; tolerance of "
                      "the same prior acceptance probability"})
        results[trust] = result
        progress(f"calibrate-loto: without {trust}: {result['accepted']} simulations within epsilon {eps:.2f} "
                 f"(prior acceptance {p:.2e}), ESS {result['ess']:.0f} -> {csv}")
    record = {"kind": "orgsim calibrate-loto", "calibration": setup.name, "generation": last,
              "generations_pooled": sorted(used), "simulations_pooled": len(pool),
              "simulations_by_generation": dict(zip(map(int, sorted(used)), counts)),
              "checks": checks, "leave_out": results,
              "wall_time_seconds": round(time.perf_counter() - started, 1), **provenance()}
    write_json(out_dir / CHECK_FILE, record)
    (out_dir / "recycle_check.md").write_text(markdown(record))
    return record


def _write_posterior(csv: Path, params: pd.DataFrame, weights: np.ndarray, setup, priors, trusts, leave_out,
                     about: dict) -> None:
    """A posterior file as the calibration writes one (every behavioural parameter, the free ones of ``trusts``,
    weight) and its manifest; a left-out trust's programme inputs are dropped (its scenario's values apply)."""
    from .provenance import provenance, write_json
    from .smc import manifest_path

    free = [q for q in priors.priors if not (leave_out and q.name.startswith(f"{leave_out}."))]
    frame = pd.DataFrame(dict(setup.fixed_params), index=range(len(params)))
    for prior in free:
        frame[prior.name] = params[prior.name].to_numpy(dtype=float)
    frame["weight"] = np.asarray(weights, dtype=float) / np.sum(weights)
    frame.to_csv(csv, index=False, float_format="%.6g")
    write_json(manifest_path(csv), {
        **about, "name": csv.stem.removeprefix("posterior_"), "posterior_file": csv.name, "trusts_calibrated": trusts,
        "leave_out": leave_out, "scale": setup.scale, "seed": setup.seed, "end": setup.end,
        "replicates": setup.replicates,
        "priors": [{"name": q.name, "low": q.low, "high": q.high, "log": q.log, "why": q.why} for q in free],
        "fixed_params": setup.fixed_params, "targets_file": setup.targets_path, "targets_sha256": setup.targets_sha256,
        "priors_file": setup.priors_path, "priors_sha256": setup.priors_sha256, **provenance()})


def _checks(history, priors, setup, targets, tables, logged, last, epsilon, free) -> dict:
    """The reconstruction against pyabc's own record (module doc)."""
    final = history.get_population(t=last)
    params = pd.DataFrame([dict(p.parameter) for p in final.particles])[free]
    recorded = np.array([p.weight for p in final.particles], dtype=float)
    ours = prior_density(priors, params) / proposal_density(history, priors, setup, last, params)
    table = tables[last]
    observed = targets.observed(setup.trusts)
    stats = table[[f"stat:{k}" for k in observed]].set_axis(list(observed), axis=1)
    weights = {k: logged[last][k] * w for k, w in targets.weights(setup.trusts).items()}
    distance = l1_distance(stats, observed, weights)
    refit = rmsd_scale_weights(
        tables[last - 1][[f"stat:{k}" for k in observed]].set_axis(list(observed), axis=1), observed) \
        if last - 1 in tables else {}
    return {
        "population_weights_max_relative_error": float(np.max(np.abs(ours / ours.sum() - recorded / recorded.sum())
                                                              / (recorded / recorded.sum()))),
        "distances_max_abs_error": float(np.max(np.abs(distance - table["distance"].to_numpy(dtype=float)))),
        "accepted_as_recorded": bool(np.array_equal(distance <= epsilon, table["accepted"].to_numpy(dtype=bool))),
        "scale_weights_max_relative_error": float(max(abs(refit[k] - logged[last][k]) / logged[last][k]
                                                      for k in observed if logged[last][k] > 0)) if refit else None,
    }


def markdown(record: dict) -> str:
    checks, main = record["checks"], record["checks"]["main_posterior"]
    lines = [f"# Leave-one-trust-out posteriors of calibration {record['calibration']} (generation {record['generation']})",
             "", f"{record['simulations_pooled']} simulations of generations {record['generations_pooled']} pooled "
             "(sim/calibration/recycle.py).", "", "## Checks against the calibration's own record", "",
             f"- last population's importance weights recomputed: largest relative error "
             f"{checks['population_weights_max_relative_error']:.1e}",
             f"- last generation's distances recomputed: largest error {checks['distances_max_abs_error']:.1e}; "
             f"acceptance as recorded: {checks['accepted_as_recorded']}",
             "- scale weights refitted: " + (f"largest relative error {checks['scale_weights_max_relative_error']:.1e}"
                                             if checks["scale_weights_max_relative_error"] is not None else
                                             "not checked (the generation before the last kept no simulations)"),
             f"- main posterior recomputed from every simulation: {main['accepted']} accepted, ESS {main['ess']:.0f}; "
             f"shift from the last population {main['posterior_shift']:.3f} ({main['posterior_shift_parameter']}), "
             f"two resamples of that population differ by {main['resampling_noise']:.3f}", "",
             "## Leave-one-trust-out", "", "| left out | epsilon | prior acceptance | accepted | ESS |",
             "| --- | --- | --- | --- | --- |"]
    for trust, row in record["leave_out"].items():
        lines.append(f"| {trust} | {row['epsilon']:.2f} | {row['prior_acceptance_probability']:.2e} | "
                     f"{row['accepted']} | {row['ess']:.0f} |")
    return "\n".join(lines) + "\n"


def register(subparsers) -> None:
    cmd = subparsers.add_parser(
        "calibrate-loto", help="leave-one-trust-out posteriors from a calibration's own simulations",
        description="Recompute a calibration's posterior without each trust from the simulations it kept, by "
                    "importance sampling (no new runs; docs/calibration.md, 'Leave-one-trust-out without five more "
                    "calibrations'). Writes posterior_loto_TRUST.csv files for orgsim report --loto.")
    cmd.add_argument("name", help="calibration name (results/calibration/NAME)")
    cmd.add_argument("--leave-out", default="all", metavar="TRUSTS",
                     help=f"trusts to leave out, comma-separated, or all (default): {', '.join(TRUST_NAMES)}")
    cmd.add_argument("--results", type=Path, default=Path("results/calibration"),
                     help="where calibrations are (results/calibration)")
    cmd.add_argument("--out", type=Path, help="folder for the posteriors (default results/calibration/NAME/loto)")
    cmd.set_defaults(handler=_cmd_loto)


def _cmd_loto(args) -> int:
    from .smc import run_directory

    trusts = TRUST_NAMES if args.leave_out == "all" else [t.strip() for t in args.leave_out.split(",") if t.strip()]
    bad = [t for t in trusts if t not in TRUST_NAMES]
    if bad or not trusts:
        raise InputError(f"--leave-out: {', '.join(bad) or 'nothing'} is not allowed; give trusts among "
                         f"{', '.join(TRUST_NAMES)}, comma-separated, or all")
    record = recycle(run_directory(args.name, args.results), trusts, args.out)
    print(json.dumps(record["leave_out"], indent=1))
    return 0
