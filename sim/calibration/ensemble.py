"""Posterior-predictive ensemble: the trusts simulated over a calibrated posterior.

``run_posterior_ensemble`` is what ``orgsim run --all --posterior FILE`` calls. Draw ``i`` takes a
posterior row (every row once, weighted by its posterior weight; or ``n_draws`` rows resampled by
weight, then equally weighted) and simulates each trust ``k`` with seed
``np.random.SeedSequence(seed, spawn_key=(i * 5 + k,))`` through the project's one batch runner
(sim/experiments/batch.py: parallel, resumable, with its own manifest in ``<out>/ensemble_runs``).
Any scenario may join: a what-if of a trust takes the trust's per-trust columns under its own changes and
the trust's seed; an organisation of its own takes the shared parameters only (the ensemble says so) and
the seed ``(k + 1) x 1,000,000 + i`` for the k-th scenario given. Such an organisation's outputs are read
at 6-48 months after its programme starts (sim/runner.py), as are the rating shares (``cqc_band_after_start``).

Written to ``out_dir``:
  ensemble_summary.json   per trust and per numeric statistic of summary.json: median and the
                          5/25/75/95% quantiles; for CQC the share of runs at each rating per
                          inspection year (and for the latest rating); per calibration target the
                          observed value beside the same quantiles
  ensemble_statistics.csv one row per draw: its weight and every target statistic
  ensemble_series.csv     per trust, weekly series (ENSEMBLE_SERIES) and week: the same quantiles over the runs
  ensemble_manifest.json  posterior file and manifest, seed, scale, draws, workers, commit
  trajectories.png        the weekly series with 50%/90% bands, published ratings and counts marked
  cqc_trajectories.png    the share of runs at each CQC rating per inspection, published rating named
  fit_targets.png         every count and ratio target: observed against the ensemble
(the figures are drawn by sim.calibration.report.write_ensemble_figures from the files above, so they
can be redrawn without rerunning the ensemble).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.experiments.batch import OutputSelection, RunSpec, run_batch
from sim.experiments.compare import root_trust
from sim.scenario import deep_merge

from .posterior import Posterior, load_posterior
from .provenance import provenance, write_json
from .targets import RATINGS, TRUST_NAMES, TargetSet, load_targets, simulated_statistics, DEFAULT_TARGETS

# weekly series kept for the trajectories figure: quality (CQC bands), practice, training, workshops
ENSEMBLE_SERIES = ("quality", "practising_share", "l4l_complete", "l4l_in_progress", "rpiws")
QUANTILES = {"q05": 0.05, "q25": 0.25, "median": 0.5, "q75": 0.75, "q95": 0.95}
SPEC_COLUMNS = {"run_index", "scenario", "overrides", "seed_index", "base_seed", "scale", "end",
                "draw", "posterior_row", "draw_weight"}


def _draws(posterior: Posterior, n_draws: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Posterior rows to run and their weights."""
    if n_draws is None:
        return np.arange(len(posterior.frame)), posterior.weights
    if n_draws < 1:
        raise InputError(f"--draws: {n_draws} is not allowed; give 1 or more")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    rows = rng.choice(len(posterior.frame), size=n_draws, replace=True, p=posterior.weights)
    return rows, np.full(n_draws, 1.0 / n_draws)


OTHER_SCENARIO_BASE = 1_000_000   # run indices of scenarios that are not one of the five trusts


def ensemble_specs(posterior: Posterior, trusts, seed: int, scale: float, n_draws: int | None = None,
                   end=None) -> list[RunSpec]:
    """Every scenario of ``trusts`` for every draw. A trust takes its ``TRUST.field`` columns; a what-if of a
    trust takes them under its own changes and shares the trust's random numbers (common random numbers); any
    other scenario (a user's own organisation) takes the shared parameters only."""
    rows, weights = _draws(posterior, n_draws, seed)
    plans = [_scenario_plan(name, position) for position, name in enumerate(trusts)]
    roots = sorted({plan["root"] for plan in plans if plan["root"]})
    specs = []
    for draw, (row, weight) in enumerate(zip(rows, weights)):
        params, overrides = posterior.parameter_set(int(row), roots)
        for plan in plans:
            root = plan["root"]
            seed_index = draw * len(TRUST_NAMES) + TRUST_NAMES.index(root) if root else plan["offset"] + draw
            run_index = seed_index if plan["name"] == root else plan["offset"] + draw
            scenario_overrides = overrides[root] if plan["name"] == root else (
                deep_merge(overrides[root], plan["own_changes"]) if root and overrides[root] else {})
            specs.append(RunSpec(run_index=run_index, scenario=plan["name"], params=params, seed_index=seed_index,
                                 base_seed=seed, scale=scale, end=end, overrides=scenario_overrides,
                                 labels={"draw": draw, "posterior_row": int(row), "draw_weight": float(weight)}))
    return specs


def _scenario_plan(name: str, position: int) -> dict:
    """How one scenario enters the ensemble: its trust (None for an organisation of its own) and own changes."""
    from sim.experiments.compare import changes_from_base, root_trust

    root = root_trust(name)
    if root not in TRUST_NAMES:
        return {"name": name, "root": None, "own_changes": {}, "offset": OTHER_SCENARIO_BASE * (position + 1)}
    return {"name": name, "root": root, "own_changes": changes_from_base(name) if name != root else {},
            "offset": OTHER_SCENARIO_BASE * (position + 1)}


def unflatten_summary(row: dict) -> dict:
    """A batch results row back into the nested summary (``cqc`` and ``survey`` dicts)."""
    summary: dict = {"cqc": {}, "survey": {}}
    for key, value in row.items():
        if key in SPEC_COLUMNS or key.startswith("param_"):
            continue
        if key.startswith("cqc_") and key[4:].isdigit():
            summary["cqc"][key[4:]] = value
        elif key.startswith("survey_"):
            summary["survey"][key[7:]] = value
        else:
            summary[key] = value
    return summary


def summaries_by_draw(runs: pd.DataFrame) -> dict[int, dict[str, dict]]:
    by_draw: dict[int, dict[str, dict]] = {}
    for row in runs.to_dict("records"):
        by_draw.setdefault(int(row["draw"]), {})[row["scenario"]] = unflatten_summary(row)
    return by_draw


def quantiles(values, weights) -> dict[str, float]:
    from pyabc.weighted_statistics import weighted_quantile  # pyabc takes ~2 s to import: only when needed

    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    keep = np.isfinite(values)
    if not keep.any():
        return {name: None for name in QUANTILES}
    values, weights = values[keep], weights[keep] / weights[keep].sum()
    return {name: float(weighted_quantile(values, weights, alpha=a)) for name, a in QUANTILES.items()}


def _numeric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in SPEC_COLUMNS and not c.startswith("param_")
            and pd.api.types.is_numeric_dtype(frame[c])]


def _rating_shares(values: pd.Series, weights: np.ndarray) -> dict[str, float]:
    total = weights.sum()
    return {r: float(weights[(values == r).to_numpy()].sum() / total) for r in RATINGS}


def summarise_trust(runs: pd.DataFrame) -> dict:
    weights = runs["draw_weight"].to_numpy(dtype=float)
    statistics = {}
    for column in _numeric_columns(runs):
        name = f"survey.{column[7:]}" if column.startswith("survey_") else column
        statistics[name] = quantiles(runs[column], weights)
    cqc_years = sorted(c[4:] for c in runs.columns if c.startswith("cqc_") and c[4:].isdigit())
    cqc = {year: _rating_shares(runs[f"cqc_{year}"], weights) for year in cqc_years
           if runs[f"cqc_{year}"].notna().any()}
    latest = _rating_shares(runs["cqc_latest"], weights) if "cqc_latest" in runs else {}
    summary = {"statistics": statistics, "cqc": cqc, "cqc_latest": latest}
    after_start = {column.removeprefix("cqc_band_m"): _rating_shares(runs[column], weights)
                   for column in sorted((c for c in runs.columns if c.startswith("cqc_band_m")), key=lambda c: int(c[10:]))
                   if runs[column].notna().any()}
    if after_start:   # the band of the quality index at 6-48 months after the programme starts (sim/runner.py)
        summary["cqc_band_after_start"] = after_start
    if "programme_start" in runs:
        summary["programme_start"] = str(runs["programme_start"].iloc[0])
    return summary


def series_quantiles(series: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per trust, series and week: the weighted quantiles over the runs (weights: each run's draw weight)."""
    weights = runs.set_index("run_index")["draw_weight"]
    variables = [c for c in series.columns if c not in ("trust", "week", "date", "run_index")]
    rows = []
    for (trust, week), part in series.groupby(["trust", "week"], sort=True):
        w = weights.loc[part["run_index"]].to_numpy(dtype=float)
        for variable in variables:
            rows.append({"trust": trust, "variable": variable, "week": week, "date": part["date"].iloc[0],
                         **quantiles(part[variable].astype(float), w)})
    order = {"trust": {t: i for i, t in enumerate(TRUST_NAMES)}, "variable": {v: i for i, v in enumerate(variables)}}
    return pd.DataFrame(rows).sort_values(["trust", "variable", "week"], kind="stable",
                                          key=lambda c: c.map(order[c.name]) if c.name in order else c
                                          ).reset_index(drop=True)


def statistics_table(runs: pd.DataFrame, targets: TargetSet) -> pd.DataFrame:
    """One row per draw: draw, weight and every target statistic computed by simulated_statistics."""
    weights = runs.groupby("draw")["draw_weight"].first()
    rows = []
    for draw, summaries in sorted(summaries_by_draw(runs).items()):
        rows.append({"draw": draw, "weight": float(weights[draw]), **simulated_statistics(summaries, targets)})
    return pd.DataFrame(rows)


def target_summary(stats: pd.DataFrame, targets: TargetSet) -> dict:
    weights = stats["weight"].to_numpy(dtype=float)
    out = {}
    for target in targets.targets:
        if target.id in stats:
            out[target.id] = {"trust": target.trust, "statistic": target.statistic, "kind": target.kind,
                              "observed": target.observed, "observed_value": target.observed_value,
                              "weight": target.weight, "source": target.source,
                              **quantiles(stats[target.id], weights)}
    return out


def run_posterior_ensemble(posterior_path, trusts=TRUST_NAMES, out_dir="results/ensemble", seed: int = 0,
                           workers: int = 1, scale: float = 1.0, *, n_draws: int | None = None,
                           scheduler: str | None = None, end=None, targets_path=DEFAULT_TARGETS,
                           progress: bool = True, figures: bool = True) -> dict:
    """Run the ensemble, write ensemble_summary.json (and friends, and figures) in ``out_dir``; return the summary."""
    from pathlib import Path

    names = _scenario_names(trusts)
    if not 0 < scale <= 1:
        raise InputError(f"--scale: {scale} is not allowed; give a fraction in (0, 1]")
    out_dir = Path(out_dir)
    posterior = load_posterior(posterior_path)
    targets = load_targets(targets_path)
    trusts = list(names)
    specs = ensemble_specs(posterior, trusts, seed, scale, n_draws, end)
    own = [name for name in trusts if root_trust(name) not in TRUST_NAMES]
    per_trust = [c for c in posterior.frame.columns if c.partition(".")[0] in TRUST_NAMES and c.partition(".")[2]]
    note = (f"{', '.join(names[n] for n in own)}: not one of the five trusts, so only the posterior's shared "
            "parameters apply" + (f"; the per-trust columns ({', '.join(per_trust)}) do not" if per_trust else "")
            ) if own else ""
    if progress:
        draws = len(specs) // len(trusts)
        where = f"on Dask at {scheduler}" if scheduler else f"with {workers} worker(s)"
        what = "trust(s)" if all(name in TRUST_NAMES for name in trusts) else "scenario(s)"
        print(f"posterior-predictive ensemble: {draws} draws x {len(trusts)} {what} = {len(specs)} runs at scale "
              f"{scale} {where} -> {out_dir}", flush=True)
        if note:
            print(note, flush=True)
    result = run_batch(specs, out_dir / "ensemble_runs", OutputSelection(series=ENSEMBLE_SERIES), workers=workers,
                       scheduler=scheduler, progress=progress,
                       description={"kind": "posterior-predictive ensemble", "posterior": str(posterior_path)})
    runs = result.runs.assign(scenario=result.runs["scenario"].map(names))   # keyed by the scenarios' own names
    if progress:
        print(f"summarising {len(runs)} runs" + (" and drawing the figures" if figures else ""), flush=True)
    stats = statistics_table(runs, targets)
    summary = {
        "posterior": str(posterior_path),
        "draws": int(runs["draw"].nunique()),
        "weighting": "posterior weights" if n_draws is None else "resampled by weight, equal weights",
        "seed": seed, "scale": scale,
        "quantiles": list(QUANTILES),
        "trusts": {names[name]: summarise_trust(runs[runs["scenario"] == names[name]]) for name in trusts},
        "targets": target_summary(stats, targets),
    }
    if note:
        summary["note"] = note
    out_dir.mkdir(parents=True, exist_ok=True)
    stats.to_csv(out_dir / "ensemble_statistics.csv", index=False, float_format="%.6g")
    series_quantiles(result.series, runs).to_csv(out_dir / "ensemble_series.csv", index=False, float_format="%.6g")
    write_json(out_dir / "ensemble_summary.json", summary)
    write_json(out_dir / "ensemble_manifest.json", {
        "kind": "orgsim posterior-predictive ensemble", "posterior": str(posterior_path),
        "posterior_manifest": posterior.manifest, "trusts": [names[name] for name in trusts],
        "scenarios": trusts, "seed": seed, "scale": scale,
        "draws": summary["draws"], "workers": workers, "scheduler": scheduler,
        "seed_rule": "np.random.SeedSequence(seed, spawn_key=(draw * 5 + trust_index,)) for a trust and a what-if of "
                     f"it; (k + 1) x {OTHER_SCENARIO_BASE} + draw for the k-th scenario of another organisation",
        "note": note,
        "parameters_not_in_posterior": posterior.missing_parameters,
        "fixed_parameters_changed_since_calibration": posterior.changed_defaults(),
        "targets_file": str(targets_path), **provenance()})
    written = []
    if figures and any(name in TRUST_NAMES for name in summary["trusts"]):
        from .report import write_ensemble_figures  # the report imports this module: import on use

        written = write_ensemble_figures(out_dir, targets_path=targets_path)
    elif figures:   # no trust of the five: no targets to fit, only the trajectories
        from sim.plots import plot_ensemble_trajectories

        from .report import ensemble_note

        written = [out_dir / "trajectories.png"]
        plot_ensemble_trajectories(pd.read_csv(out_dir / "ensemble_series.csv"), written[0], ensemble_note(summary))
    if progress:
        print_ensemble_table(summary)
        print(f"wrote {out_dir / 'ensemble_summary.json'}" + "".join(f", {path.name}" for path in written))
    return summary


TABLE_STATISTICS = (("l4l_complete_2021_03", "L4L done"), ("l4l_in_progress_2021_03", "L4L in prog"),
                    ("rpiws_2019_07", "RPIWs@19"), ("lead_time_reduction", "LT cut"))


def _scenario_names(scenarios) -> dict[str, str]:
    """Each scenario as given (name or path) -> its own name (the five trusts first, in their order)."""
    from sim.scenario import load_scenario

    given = list(dict.fromkeys(scenarios))
    if not given:
        raise InputError(f"no scenario given; name one or more (e.g. {', '.join(TRUST_NAMES)}) or a path")
    ordered = [t for t in TRUST_NAMES if t in given] + [g for g in given if g not in TRUST_NAMES]
    names = {g: load_scenario(g).name for g in ordered}
    repeated = sorted({n for n in names.values() if list(names.values()).count(n) > 1})
    if repeated:
        raise InputError(f"two scenarios are both named {', '.join(repeated)}; give each scenario its own name")
    return names


def _census_applies(entry: dict) -> bool:
    from sim.runner import RPIW_CENSUS

    return entry.get("programme_start", "2015-07-01") < RPIW_CENSUS.isoformat()


HORIZON_STATISTICS = (("l4l_participants", "L4L particip."), ("practising_share", "practising"),
                      ("rpiws", "RPIWs"), ("quality", "quality"))


def print_ensemble_table(summary: dict) -> None:
    """Medians with 90% intervals per trust, and the most likely latest CQC rating with its share; an organisation
    whose programme starts after the census dates gets the same by months after its start."""
    census = {t: s for t, s in summary["trusts"].items() if _census_applies(s)}
    if census:
        _print_census_table(summary["draws"], census)
    for name, entry in summary["trusts"].items():
        if not _census_applies(entry):
            _print_horizon_table(summary["draws"], name, entry)


def _print_horizon_table(draws: int, name: str, entry: dict) -> None:
    from sim.runner import HORIZON_MONTHS

    print(f"{name}: {draws} draws; median [5%, 95%] by months after the programme starts "
          f"({entry.get('programme_start', '?')})")
    print(f"{'months':>6} " + " ".join(f"{label:>20}" for _, label in HORIZON_STATISTICS) + "  CQC band (share)")
    for months in HORIZON_MONTHS:
        cells = []
        for key, _ in HORIZON_STATISTICS:
            q = entry["statistics"].get(f"{key}_m{months}")
            cells.append(f"{q['median']:.3g} [{q['q05']:.3g}, {q['q95']:.3g}]" if q and q["median"] is not None else "-")
        shares = entry.get("cqc_band_after_start", {}).get(str(months))
        rating, share = max(shares.items(), key=lambda kv: kv[1]) if shares else ("-", 0.0)
        print(f"{months:>6} " + " ".join(f"{c:>20}" for c in cells) + f"  {rating} ({share:.0%})")


def _print_census_table(draws: int, trusts: dict) -> None:
    width = max(6, *map(len, trusts))
    print(f"posterior-predictive ensemble: {draws} draws; median [5%, 95%]")
    print(f"{'trust':{width}} " + " ".join(f"{label:>20}" for _, label in TABLE_STATISTICS) + "  latest CQC (share)")
    for trust, s in trusts.items():
        cells = []
        for key, _ in TABLE_STATISTICS:
            q = s["statistics"].get(key)
            cells.append(f"{q['median']:.3g} [{q['q05']:.3g}, {q['q95']:.3g}]" if q and q["median"] is not None else "-")
        rating, share = max(s["cqc_latest"].items(), key=lambda kv: kv[1]) if s["cqc_latest"] else ("-", 0.0)
        print(f"{trust:{width}} " + " ".join(f"{c:>20}" for c in cells) + f"  {rating} ({share:.0%})")
