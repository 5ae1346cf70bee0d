"""Global sensitivity analysis of experiment results with SALib: Morris (mu*, sigma) and Sobol (S1, ST, S2).

Replicates are averaged per sample point first (they share seeds across points: common random
numbers), then SALib analyses the averages. Saltelli and Morris samples are blocks (one block of
rows per base sample or trajectory), so a prefix of the sample is itself a valid, smaller design:
indices are computed at N/4, N/2 and N (or r/4, r/2, r trajectories) from the same runs to show
convergence without extra runs.

Every index at the final size is checked, and the checks are written beside it (``flags``), printed and
drawn, with what to do about them (``advice``):

- ``outside [0,1]``: a Sobol index below 0 or above 1 is sampling error (or model noise: ST > 1);
- ``CI wider than index``: the interval includes zero, so the effect cannot be told from none;
- ``rank not converged``: bootstrap resamples of the base samples (Sobol) or trajectories (Morris)
  disagree on whether the parameter is among the ``TOP`` most influential: fewer than ``STABLE_SHARE``
  of them agree with the estimate (``top_agreement``; ``rank_low``..``rank_high`` is its 90% bootstrap
  rank interval; ``top_stability`` the share of resamples with the very same top set);
- ``noisy means``: more than ``NOISY_MEANS`` of the variance of the output's replicate means (what the
  indices are computed from) is still seed noise (``variance_decomposition``);
- ``undefined: output constant``: a Sobol index that is not a number because the output takes one value over the
  whole design (nothing to apportion, e.g. a mechanism neither case has).

A stochastic model's output varies with its parameters and with its seed. ``variance_decomposition``
separates the two from the replicates (a two-way analysis of variance of points x replicates, as common
random numbers make replicate r the same seed at every point): the share of a run's variance the
parameters explain, the share that is seed noise (shared by every point, and differing between points),
how much noise is left in the replicate means, and how many replicates would bring it under
``NOISY_MEANS``; with bootstrap intervals over the design points.
"""

from __future__ import annotations

import importlib
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.experiments.designs import salib_problem, sample_points
from sim.experiments.figures import output_grid, save
from sim.experiments.outputs import output_label
from sim.experiments.schema import Experiment

INDEX_COLUMNS = ["case", "output", "method", "n", "runs", "parameter", "parameter_2", "index", "value", "conf",
                 "rank", "rank_low", "rank_high", "top_agreement", "top_stability", "flags"]
MAIN_INDEX = {"sobol": "ST", "morris": "mu_star"}
TOP = 3                     # the ranking checked for convergence: which parameters are the TOP most influential
STABLE_SHARE = 0.9          # the share of bootstrap resamples that must agree on them
NOISY_MEANS = 0.1          # the share of the replicate means' variance that may be seed noise
OUTSIDE, WIDE, UNSETTLED, NOISY = "outside [0,1]", "CI wider than index", "rank not converged", "noisy means"
UNDEFINED = "undefined: output constant"


def salib_analysis(method: str):
    """SALib's ``SALib.analyze.<method>`` module, imported on first use: it brings scipy.stats, seconds that every
    other orgsim command would otherwise pay at start."""
    return importlib.import_module(f"SALib.analyze.{method}")


def with_gaps(experiment: Experiment, runs: pd.DataFrame) -> pd.DataFrame:
    """The runs and, for every pair [A, B] of ``gaps``, one row per design point and replicate holding A - B for every
    final output (case ``"A - B"``): the runs of the two cases at the same point and replicate are paired (with
    common random numbers they share their seed, so the gap is not blurred by two different random streams)."""
    outputs = [name for name in experiment.outputs.final if name in runs]
    frames = [runs]
    for first, second in experiment.gaps:
        keys = ["point", "replicate"]
        a = runs[runs["case"] == first].set_index(keys)[outputs]
        b = runs[runs["case"] == second].set_index(keys)[outputs]
        gap = (a.astype(float) - b.astype(float).reindex(a.index)).reset_index()
        frames.append(gap.assign(case=f"{first} - {second}"))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else runs


def gap_table(experiment: Experiment, runs: pd.DataFrame, seed: int = 0, num_resamples: int = 1000) -> pd.DataFrame:
    """Per gap [A, B] and output: the mean of A, of B and of A - B over the design (each point's replicate mean,
    points equally weighted: the average over the varied parameters' ranges), a 95% bootstrap interval of the mean
    gap (points resampled) and where 90% of the points' gaps fall (``q05``, ``q95``: the spread over the ranges).
    ``runs`` as from ``with_gaps``."""
    rng = np.random.default_rng(seed)
    rows = []
    for first, second in experiment.gaps:
        label = f"{first} - {second}"
        for output in experiment.outputs.final:
            means = {case: runs[runs["case"] == case].groupby("point")[output].mean().to_numpy(dtype=float)
                     for case in (first, second, label)}
            gaps = means[label][~np.isnan(means[label])]
            boot = [rng.choice(gaps, len(gaps)).mean() for _ in range(num_resamples)] if len(gaps) else [np.nan]
            rows.append({"gap": label, "output": output, "mean_first": np.nanmean(means[first]),
                         "mean_second": np.nanmean(means[second]), "gap_mean": gaps.mean() if len(gaps) else np.nan,
                         "ci_low": np.quantile(boot, 0.025), "ci_high": np.quantile(boot, 0.975),
                         "q05": np.quantile(gaps, 0.05) if len(gaps) else np.nan,
                         "q95": np.quantile(gaps, 0.95) if len(gaps) else np.nan, "points": len(gaps)})
    return pd.DataFrame(rows)


def plot_gaps(table: pd.DataFrame):
    """Per gap, a bar per output: the mean gap with its 95% interval (thick) and where 90% of the design's points
    fall (thin): which mechanisms carry the difference between the two cases."""
    from sim.experiments.figures import pyplot

    plt = pyplot()
    gaps = list(dict.fromkeys(table["gap"]))
    figure, axes = plt.subplots(1, len(gaps), figsize=(7.5 * len(gaps), 0.45 * table["output"].nunique() + 1.8),
                                squeeze=False)
    for ax, gap in zip(axes[0], gaps):
        rows = table[table["gap"] == gap].iloc[::-1]
        positions = np.arange(len(rows))
        colours = ["tab:green" if v > 0 else "tab:red" for v in rows["gap_mean"]]
        ax.barh(positions, rows["gap_mean"], color=colours, alpha=0.7, height=0.6)
        ax.errorbar(rows["gap_mean"], positions, xerr=[rows["gap_mean"] - rows["q05"], rows["q95"] - rows["gap_mean"]],
                    fmt="none", color="grey", lw=1, capsize=3)
        ax.errorbar(rows["gap_mean"], positions, xerr=[rows["gap_mean"] - rows["ci_low"],
                                                       rows["ci_high"] - rows["gap_mean"]],
                    fmt="none", color="black", lw=3)
        for position, r in zip(positions, rows.itertuples()):
            ax.annotate(f"{r.gap_mean:+.2f}", (max(r.q95, r.gap_mean), position), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=7)
        ax.axvline(0, color="black", lw=0.6)
        ax.set_yticks(positions, [output_label(o) for o in rows["output"]], fontsize=8)
        ax.set_xlabel(f"{gap} (mean over the design; thick: 95% interval of the mean, thin: 90% of the points)",
                      fontsize=8)
        ax.set_title(f"Gap {gap}, run for run (same seeds)", fontsize=10)
    figure.tight_layout()
    return figure


def point_means(runs: pd.DataFrame, outputs: list[str], n_points: int) -> dict[str, pd.DataFrame]:
    """Per case, the replicate mean of each output at each sample point (rows ordered by point)."""
    means = {}
    for case, case_runs in runs.groupby("case", sort=False):
        by_point = case_runs.groupby("point")[outputs].mean()
        if len(by_point) != n_points:
            raise InputError(f"case {case}: results hold {len(by_point)} of {n_points} sample points; "
                             "run the experiment to completion first")
        means[case] = by_point.sort_index()
    return means


def convergence_sizes(total: int) -> list[int]:
    """Sample sizes for the convergence view: total/4, total/2, total (those of at least 2)."""
    return sorted({size for size in (total // 4, total // 2, total) if size >= 2})


def analyse(experiment: Experiment, runs: pd.DataFrame, num_resamples: int = 100,
            conf_level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """The long table of indices (see INDEX_COLUMNS) for every case, output and convergence size, flagged."""
    problem = salib_problem(experiment)
    X = sample_points(experiment).to_numpy()
    outputs = experiment.outputs.final
    main = MAIN_INDEX[experiment.design.kind]
    rows = []
    for case, means in point_means(runs, outputs, len(X)).items():
        for output in outputs:
            Y = means[output].to_numpy(dtype=float)
            if experiment.design.kind == "sobol":
                output_rows = _sobol_rows(problem, Y, experiment, num_resamples, conf_level, seed)
                if np.nanmax(Y) - np.nanmin(Y) <= _rounding(Y):    # no variance: a share of it is 0/0, not SALib's 0
                    for row in output_rows:
                        row.update(value=np.nan, conf=np.nan)
            else:
                output_rows = _morris_rows(problem, X, Y, experiment, num_resamples, conf_level, seed)
            ranks, stability = bootstrap_ranks(problem, X, Y, experiment, num_resamples, seed)
            for row in output_rows:
                if row["n"] == experiment.design.samples and row["index"] == main:
                    row.update(ranks[row["parameter"]], top_stability=stability)
            rows += [{"case": case, "output": output, **row} for row in output_rows]
    noise = variance_decomposition(runs, outputs, num_resamples=0)
    return flag_indices(pd.DataFrame(rows, columns=INDEX_COLUMNS), noise)


def sobol_values(experiment: Experiment, runs: pd.DataFrame) -> pd.DataFrame:
    """S1 and ST of the replicate means of every case, output and parameter at the design's N, without intervals:
    one row per case, output and parameter (columns ``S1``, ``ST``). For comparing successive N (``round_changes``)."""
    problem = salib_problem(experiment)
    points = len(sample_points(experiment))
    rows = []
    for case, means in point_means(runs[runs["point"] < points], experiment.outputs.final, points).items():
        for output in experiment.outputs.final:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                result = salib_analysis("sobol").analyze(problem, means[output].to_numpy(dtype=float), num_resamples=2,
                                                         seed=0, calc_second_order=experiment.design.second_order)
            rows += [{"case": case, "output": output, "parameter": name, "S1": result["S1"][i], "ST": result["ST"][i]}
                     for i, name in enumerate(problem["names"])]
    return pd.DataFrame(rows)


def round_changes(before: pd.DataFrame, after: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Per case and output, how much the indices moved from one N to the next (``sobol_values`` of each):
    ``max_change_S1``, ``max_change_ST`` (largest absolute change over the parameters), ``rank_changes`` (the
    parameters that changed place in the ranking by ST among those whose ST exceeds ``tolerance`` at either N; the
    others are read as tied, not influential) and ``stable`` (both changes within ``tolerance`` and no rank change)."""
    keys = ["case", "output", "parameter"]
    both = before.set_index(keys).join(after.set_index(keys), lsuffix="_before", rsuffix="_after").reset_index()
    rows = []
    for (case, output), table in both.groupby(["case", "output"], sort=False):
        change = {index: float(np.nanmax(np.abs(table[f"{index}_after"] - table[f"{index}_before"])))
                  for index in ("S1", "ST")}
        ranked = table[(table["ST_before"] > tolerance) | (table["ST_after"] > tolerance)]
        order_before = list(ranked.sort_values("ST_before", ascending=False, kind="stable")["parameter"])
        order_after = list(ranked.sort_values("ST_after", ascending=False, kind="stable")["parameter"])
        moved = [name for name, other in zip(order_before, order_after) if name != other]
        rows.append({"case": case, "output": output, "max_change_S1": change["S1"], "max_change_ST": change["ST"],
                     "rank_changes": len(moved), "moved": ", ".join(moved),
                     "stable": bool(max(change.values()) <= tolerance and not moved)})
    return pd.DataFrame(rows)


def adaptive_markdown(rounds: pd.DataFrame, tolerance: float, max_n: int) -> list[str]:
    """The section of summary.md on the adaptive rounds: per round and output the changes and the verdict."""
    final = rounds[rounds["n"] == rounds["n"].max()]
    converged = bool(len(final)) and final["stable"].all()
    verdict = (f"converged at N = {rounds['n'].max()}: every S1 and ST moved by at most {tolerance:g} from "
               f"N = {rounds['n'].max() // 2}, and the ranking by ST did not change" if converged else
               f"NOT converged by N = {rounds['n'].max() if len(rounds) else '-'} (--max-n {max_n}): raise --max-n, "
               "or read the indices with their flags")
    lines = ["## Adaptive N", "", f"N doubles until the indices and their ranking are stable within {tolerance:g} "
             f"between successive N; {verdict}.", "",
             "| N | case | output | max change S1 | max change ST | rank changes | stable |", "|---|---|---|---|---|---|---|"]
    for r in rounds.itertuples():
        lines.append(f"| {r.previous_n} -> {r.n} | {r.case} | {r.output} | {r.max_change_S1:.3f} | "
                     f"{r.max_change_ST:.3f} | {r.rank_changes}{f' ({r.moved})' if r.moved else ''} | "
                     f"{'yes' if r.stable else 'no'} |")
    return lines + [""]


def plot_adaptive(rounds: pd.DataFrame, tolerance: float):
    """Per case, the largest change of S1 and of ST against N for every output, with the tolerance."""
    from sim.plots import style

    cases = list(dict.fromkeys(rounds["case"]))
    figure, axes = output_grid(len(cases), 5.5, 3.8)
    for ax, case in zip(axes, cases):
        table = rounds[rounds["case"] == case]
        for number, (output, line) in enumerate(table.groupby("output", sort=False)):
            look = style(number)
            change = line[["max_change_S1", "max_change_ST"]].max(axis=1)
            ax.plot(line["n"], change, marker=look["marker"], linestyle=look["linestyle"], color=look["color"],
                    label=output_label(output))
            unstable = ~line["stable"].to_numpy()
            ax.plot(line["n"][unstable], change[unstable], "o", mfc="none", mec="red", ms=9)
        ax.axhline(tolerance, color="grey", linestyle="--", linewidth=0.8, label=f"tolerance {tolerance:g}")
        ax.set_xscale("log", base=2)
        sizes = sorted(table["n"].unique())
        ax.set_xticks(sizes, [str(size) for size in sizes])
        ax.minorticks_off()
        ax.set(xlabel="base samples N (change from N/2)", ylabel="largest change of S1 or ST")
        ax.set_title(case, fontsize=9)
        ax.legend(fontsize=6)
    figure.suptitle("Adaptive N: how much the indices moved when N doubled (red ring: not stable)")
    figure.tight_layout()
    return figure


def _main_index(problem, X, Y, experiment) -> np.ndarray:
    """The main index (Sobol ST, Morris mu*) of every parameter, without intervals."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if experiment.design.kind == "sobol":
            return np.asarray(salib_analysis("sobol").analyze(
                problem, Y, calc_second_order=experiment.design.second_order, num_resamples=2, seed=0)["ST"])
        return np.asarray(salib_analysis("morris").analyze(
            problem, X, Y, num_resamples=2, num_levels=experiment.design.levels, seed=0)["mu_star"])


def _ranks(values: np.ndarray) -> np.ndarray:
    """1 for the largest value; NaN last."""
    order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")
    ranks = np.empty(len(values), dtype=int)
    ranks[order] = np.arange(1, len(values) + 1)
    return ranks


def bootstrap_ranks(problem, X, Y, experiment, num_resamples: int, seed: int) -> tuple[dict, float]:
    """Per parameter its rank by the main index and 90% bootstrap rank interval; and the share of resamples
    whose top ``TOP`` parameters are the same set. Resamples draw whole blocks (a Sobol base sample with its
    D + 2 (or 2D + 2) points, a Morris trajectory), the unit of the design, with replacement."""
    D = problem["num_vars"]
    if experiment.design.kind == "sobol":
        block = 2 * D + 2 if experiment.design.second_order else D + 2
    else:
        block = D + 1
    blocks = len(Y) // block
    estimate = _ranks(_main_index(problem, X, Y, experiment))
    top = min(TOP, D - 1)
    rng = np.random.default_rng(seed)
    resampled = []
    for _ in range(max(num_resamples, 1)):
        chosen = rng.integers(blocks, size=blocks)
        rows = (chosen[:, None] * block + np.arange(block)).ravel()
        resampled.append(_ranks(_main_index(problem, X[rows], Y[rows], experiment)))
    resampled = np.array(resampled)                     # resamples x parameters
    in_top = resampled <= top
    agrees = in_top == (estimate <= top)
    per_parameter = {name: {"rank": int(estimate[i]), "rank_low": float(np.quantile(resampled[:, i], 0.05)),
                            "rank_high": float(np.quantile(resampled[:, i], 0.95)),
                            "top_agreement": float(agrees[:, i].mean())}
                     for i, name in enumerate(problem["names"])}
    return per_parameter, float(agrees.all(axis=1).mean())


def flag_indices(indices: pd.DataFrame, noise: pd.DataFrame | None = None) -> pd.DataFrame:
    """The ``flags`` column: the checks of the module docstring, for the indices at each case's final size.
    ``noise`` (a ``variance_decomposition``) flags every index of an output whose replicate means are noisy."""
    indices = indices.copy()
    final = indices["n"] == indices.groupby("case")["n"].transform("max")
    value, conf = indices["value"].astype(float), indices["conf"].astype(float)
    is_sobol = indices["method"] == "sobol"
    bounded = is_sobol & indices["index"].isin(["S1", "ST", "S2"])
    outside = final & bounded & ((value < 0) | (value > 1))
    wide = final & conf.notna() & (conf > value.abs())
    unsettled = final & (indices.get("top_agreement", pd.Series(np.nan, indices.index)).astype(float) < STABLE_SHARE)
    undefined = final & bounded & value.isna()
    noisy = pd.Series(False, indices.index)
    if noise is not None and len(noise):
        share = noise.set_index(["case", "output"])["noise_in_means"]
        keys = pd.MultiIndex.from_frame(indices[["case", "output"]])
        noisy = final & pd.Series(share.reindex(keys).to_numpy() > NOISY_MEANS, indices.index)
    flags = [[name for name, hit in ((OUTSIDE, o), (WIDE, w), (UNSETTLED, u), (NOISY, n), (UNDEFINED, c)) if hit]
             for o, w, u, n, c in zip(outside, wide, unsettled, noisy, undefined)]
    indices["flags"] = ["; ".join(f) for f in flags]
    return indices


def advice(indices: pd.DataFrame, replicates: int | None = None) -> list[str]:
    """In words: what the flags mean and what to do, one line per kind of flag raised (none if none)."""
    flagged = indices[indices["flags"].fillna("") != ""]
    lines = []
    size = "design.samples (" + ("N base samples" if (indices["method"] == "sobol").any() else "trajectories r") + ")"
    more_replicates = f"replicates (now {replicates})" if replicates else "replicates"
    count = {flag: int(flagged["flags"].str.contains(flag, regex=False).sum())
             for flag in (OUTSIDE, WIDE, UNSETTLED, NOISY, UNDEFINED)}
    if count[OUTSIDE]:
        lines.append(f"{count[OUTSIDE]} Sobol index(es) outside [0, 1]: these estimates are sampling error. Double "
                     f"{size}; an ST above 1 (or S1 above ST) says the model's own noise inflates the indices: "
                     f"raise {more_replicates} so that each point's mean is less noisy.")
    if count[WIDE]:
        lines.append(f"{count[WIDE]} index(es) with a confidence interval wider than the index: their effect cannot "
                     f"be told from zero at this size. If they matter to the question, double {size}; otherwise "
                     "read them as not influential.")
    if count[UNSETTLED]:
        stability = indices.groupby(["case", "output"])["top_stability"].max()
        worst = stability.idxmin()
        lines.append(f"{count[UNSETTLED]} parameter(s) whose place among the {TOP} most influential is not settled: "
                     f"bootstrap resamples disagree (the same top {TOP} in as few as {stability.min():.0%} of "
                     f"resamples, {worst[0]} / {worst[1]}; aim for {STABLE_SHARE:.0%}). Double {size} until the "
                     f"ranking holds; raise {more_replicates} if the output is noisy.")
    if count[UNDEFINED]:
        outputs = sorted(set(flagged.loc[flagged["flags"].str.contains(UNDEFINED, regex=False), "output"]))
        lines.append(f"{count[UNDEFINED]} Sobol index(es) undefined: {', '.join(outputs)} take(s) one value over the "
                     "whole design (per case), so there is no variance to apportion; such an output can be left out.")
    if replicates == 1:
        lines.append("One replicate per point: the seed's noise cannot be told from the parameters' effects, and the "
                     "indices rank both. Use replicates: 2 or more (common random numbers) and read variance.csv.")
    if count[NOISY]:
        outputs = sorted(set(flagged.loc[flagged["flags"].str.contains(NOISY, regex=False), "output"]))
        lines.append(f"{len(outputs)} output(s) whose replicate means are still more than {NOISY_MEANS:.0%} seed noise "
                     f"({', '.join(outputs)}): their indices partly rank noise. Raise {more_replicates} to the number "
                     "variance.csv gives (replicates_needed).")
    return lines


def variance_decomposition(runs: pd.DataFrame, outputs: list[str], conf_level: float = 0.95,
                           num_resamples: int = 100, seed: int = 0) -> pd.DataFrame:
    """Per case and output, how much of the variance of a run is the parameters' and how much seed noise.

    The runs of a case form a table Y[point, replicate]. A two-way analysis of variance (method of moments)
    reads it as parameters + seed + seed-by-point noise: with common random numbers replicate r has the same
    seed at every point, so part of the seed's effect is shared by all points (``seed_shared``) and cancels
    between them; the rest differs from point to point (``seed_point``) and is what averaging over R
    replicates shrinks. Columns: ``points``, ``replicates``, ``run_variance`` (parameters + seed),
    ``parameters``, ``seed_shared``, ``seed_point`` (shares of it), ``noise_in_means`` (the share of the variance
    of the replicate means, which the indices analyse, that is noise: seed_point / R over it),
    ``replicates_needed`` (for noise_in_means at most ``NOISY_MEANS``), and ``_low``/``_high`` bootstrap
    intervals (``conf_level``, design points resampled) of ``parameters`` and ``noise_in_means``. With one
    replicate nothing can be separated: the shares are NaN. Points missing a replicate's value are left out.
    """
    rows = []
    rng = np.random.default_rng(seed)
    for case, case_runs in runs.groupby("case", sort=False):
        for output in outputs:
            table = case_runs.pivot_table(index="point", columns="replicate", values=output, aggfunc="first")
            Y = table.dropna().to_numpy(dtype=float)
            row = {"case": case, "output": output, "points": Y.shape[0], "replicates": Y.shape[1],
                   **_variance_components(Y)}
            resampled = [_variance_components(Y[rng.integers(len(Y), size=len(Y))]) for _ in range(num_resamples)]
            tail = (1 - conf_level) / 2
            for key in ("parameters", "noise_in_means"):
                values = np.array([r[key] for r in resampled], dtype=float)
                values = values[~np.isnan(values)]
                low, high = np.quantile(values, [tail, 1 - tail]) if len(values) else (np.nan, np.nan)
                row.update({f"{key}_low": low, f"{key}_high": high})
            rows.append(row)
    return pd.DataFrame(rows)


def _rounding(Y: np.ndarray) -> float:
    """Differences this small are floating-point rounding (of a sum over weeks), not variation."""
    return 1e-9 * max(1.0, float(np.nanmax(np.abs(Y))) if np.isfinite(Y).any() else 1.0)


def _variance_components(Y: np.ndarray) -> dict:
    """Shares of a run's variance from a points x replicates table (see ``variance_decomposition``)."""
    points, replicates = Y.shape
    empty = {"run_variance": np.nan, "parameters": np.nan, "seed_shared": np.nan, "seed_point": np.nan,
             "noise_in_means": np.nan, "replicates_needed": np.nan}
    if points < 2 or replicates < 2:
        return empty
    point_means, replicate_means = Y.mean(axis=1), Y.mean(axis=0)
    residual = Y - point_means[:, None] - replicate_means[None, :] + Y.mean()
    ms_residual = (residual ** 2).sum() / ((points - 1) * (replicates - 1))
    seed_point = ms_residual
    seed_shared = max((points * replicate_means.var(ddof=1) - ms_residual) / points, 0.0)
    parameters = max((replicates * point_means.var(ddof=1) - ms_residual) / replicates, 0.0)
    total = parameters + seed_shared + seed_point
    if total <= _rounding(Y) ** 2:
        return {**empty, "run_variance": 0.0}
    means_variance = parameters + seed_point / replicates
    needed = (np.inf if parameters == 0 else
              max(2, int(np.ceil(seed_point * (1 - NOISY_MEANS) / (NOISY_MEANS * parameters)))))
    return {"run_variance": total, "parameters": parameters / total, "seed_shared": seed_shared / total,
            "seed_point": seed_point / total, "noise_in_means": (seed_point / replicates) / means_variance,
            "replicates_needed": needed}


def variance_markdown(noise: pd.DataFrame) -> list[str]:
    """The decomposition as a markdown section (lines)."""
    lines = ["## Seed noise and parameters", "",
             "Of a run's variance (at one point: seed; between points: parameters), the share the parameters "
             "explain, the share that is seed noise shared by every point (cancels between points under common "
             "random numbers) and differing between points; then how much of the variance of the replicate means, "
             f"which the indices analyse, is still noise, and how many replicates bring it under {NOISY_MEANS:.0%}. "
             "Intervals: bootstrap over design points.", "",
             "| case | output | replicates | parameters | seed, shared | seed, per point | noise in the means | "
             "replicates needed |", "|---|---|---|---|---|---|---|---|"]
    for r in noise.itertuples():
        if np.isnan(r.parameters):
            why = "does not vary" if r.run_variance == 0 else "one replicate: cannot separate"
            lines.append(f"| {r.case} | {r.output} | {r.replicates} | ({why}) | | | | |")
            continue
        lines.append(f"| {r.case} | {r.output} | {r.replicates} | {r.parameters:.0%} [{r.parameters_low:.0%}, "
                     f"{r.parameters_high:.0%}] | {r.seed_shared:.0%} | {r.seed_point:.0%} | {r.noise_in_means:.0%} "
                     f"[{r.noise_in_means_low:.0%}, {r.noise_in_means_high:.0%}] | {_needed(r.replicates_needed)} |")
    return lines + [""]


def _needed(value) -> str:
    return "any (no parameter effect)" if value == np.inf else f"{int(value)}"


def _sobol_rows(problem, Y, experiment, num_resamples, conf_level, seed) -> list[dict]:
    second_order = experiment.design.second_order
    D = problem["num_vars"]
    block = 2 * D + 2 if second_order else D + 2
    rows = []
    for n in convergence_sizes(experiment.design.samples):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            result = salib_analysis("sobol").analyze(problem, Y[: n * block], calc_second_order=second_order,
                                                     num_resamples=num_resamples, conf_level=conf_level, seed=seed)
        common = {"method": "sobol", "n": n, "runs": n * block * experiment.replicates, "parameter_2": ""}
        for i, name in enumerate(problem["names"]):
            for index in ("S1", "ST"):
                rows.append({**common, "parameter": name, "index": index,
                             "value": result[index][i], "conf": result[f"{index}_conf"][i]})
            if second_order:
                for j in range(i + 1, D):
                    rows.append({**common, "parameter": name, "parameter_2": problem["names"][j], "index": "S2",
                                 "value": result["S2"][i, j], "conf": result["S2_conf"][i, j]})
    return rows


def _morris_rows(problem, X, Y, experiment, num_resamples, conf_level, seed) -> list[dict]:
    block = problem["num_vars"] + 1
    rows = []
    for r in convergence_sizes(experiment.design.samples):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            result = salib_analysis("morris").analyze(problem, X[: r * block], Y[: r * block],
                                                      num_resamples=num_resamples, conf_level=conf_level,
                                                      num_levels=experiment.design.levels, seed=seed)
        common = {"method": "morris", "n": r, "runs": r * block * experiment.replicates, "parameter_2": ""}
        for i, name in enumerate(problem["names"]):
            rows.append({**common, "parameter": name, "index": "mu_star",
                         "value": result["mu_star"][i], "conf": result["mu_star_conf"][i]})
            rows.append({**common, "parameter": name, "index": "sigma", "value": result["sigma"][i], "conf": np.nan})
            rows.append({**common, "parameter": name, "index": "mu", "value": result["mu"][i], "conf": np.nan})
    return rows


def headline(indices: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """Per case and output, the ``top`` parameters by the main index at the final size, with their flags."""
    main = MAIN_INDEX[indices["method"].iloc[0]]
    final = indices[(indices["n"] == indices.groupby("case")["n"].transform("max")) & (indices["index"] == main)]
    ordered = final.sort_values(["case", "output", "value"], ascending=[True, True, False])
    table = ordered.groupby(["case", "output"], sort=False).head(top)
    return table[["case", "output", "parameter", "index", "value", "conf", "rank_low", "rank_high", "top_agreement",
                  "flags"]]


def summary_markdown(indices: pd.DataFrame, replicates: int | None = None, noise: pd.DataFrame | None = None) -> str:
    table = headline(indices)
    lines = ["# Sensitivity analysis: the most influential parameters and the checks on them", "",
             f"Flags: `{OUTSIDE}` (a Sobol index below 0 or above 1), `{WIDE}` (the interval includes zero), "
             f"`{UNSETTLED}` (fewer than {STABLE_SHARE:.0%} of bootstrap resamples agree on whether the parameter is "
             f"among the {TOP} most influential; rank_low..rank_high is its 90% bootstrap rank interval).", ""]
    what_to_do = advice(indices, replicates)
    lines += (["## What to do", "", *[f"- {line}" for line in what_to_do], ""] if what_to_do
              else ["No flags: the indices are inside [0, 1], distinguishable from zero where ranked, and the "
                    "ranking is stable.", ""])
    columns = list(table.columns)
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |")
    if noise is not None:
        lines += ["", *variance_markdown(noise)]
    return "\n".join(lines) + "\n"


def write_analysis(indices: pd.DataFrame, out_dir: Path, replicates: int | None = None,
                   noise: pd.DataFrame | None = None, adaptive: dict | None = None,
                   gaps: pd.DataFrame | None = None) -> list[Path]:
    """Write indices.csv (with the flags), summary.md (the headline and what to do) and the figures; with ``noise``
    (a ``variance_decomposition``) also variance.csv and variance_<case>.png; with ``adaptive`` (``rounds``: the
    ``round_changes`` of every round with ``previous_n`` and ``n``, ``tolerance``, ``max_n``) adaptive.csv, a section
    of summary.md and adaptive.png; with ``gaps`` (a ``gap_table``) gaps.csv and gaps.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "indices.csv"
    indices.to_csv(csv_path, index=False)
    summary = summary_markdown(indices, replicates, noise)
    if adaptive is not None:
        summary += "\n" + "\n".join(adaptive_markdown(adaptive["rounds"], adaptive["tolerance"], adaptive["max_n"]))
    (out_dir / "summary.md").write_text(summary)
    written = [csv_path, out_dir / "summary.md"]
    if gaps is not None and len(gaps):
        gaps.to_csv(out_dir / "gaps.csv", index=False, float_format="%.6g")
        written += [out_dir / "gaps.csv", save(plot_gaps(gaps), out_dir / "gaps.png")]
    if adaptive is not None and len(adaptive["rounds"]):
        adaptive["rounds"].to_csv(out_dir / "adaptive.csv", index=False, float_format="%.6g")
        written += [out_dir / "adaptive.csv",
                    save(plot_adaptive(adaptive["rounds"], adaptive["tolerance"]), out_dir / "adaptive.png")]
    if noise is not None:
        noise.to_csv(out_dir / "variance.csv", index=False, float_format="%.6g")
        written.append(out_dir / "variance.csv")
        for case, case_noise in noise.groupby("case", sort=False):
            written.append(save(plot_variance(case_noise, case), out_dir / f"variance_{_slug(case)}.png"))
    for case, case_indices in indices.groupby("case", sort=False):
        method = case_indices["method"].iloc[0]
        final = case_indices[case_indices["n"] == case_indices["n"].max()]
        plot = plot_sobol if method == "sobol" else plot_morris
        note = "\n".join(advice(case_indices, replicates))
        written.append(save(plot(final, case, note), out_dir / f"{method}_{_slug(case)}.png"))
        written.append(save(plot_convergence(case_indices, case), out_dir / f"convergence_{_slug(case)}.png"))
    return written


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def _stability_title(output: str, table: pd.DataFrame) -> str:
    stability = table["top_stability"].dropna()
    if stability.empty:
        return output_label(output)
    verdict = "settled" if stability.iloc[0] >= STABLE_SHARE else "NOT settled"
    return f"{output_label(output)}\ntop {TOP} the same in {stability.iloc[0]:.0%} of resamples: {verdict}"


def _note(figure, note: str) -> None:
    if note:
        import textwrap

        text = "\n".join(textwrap.fill(line, int(figure.get_figwidth() * 14)) for line in note.split("\n"))
        figure.text(0.01, -0.01, text, ha="left", va="top", fontsize=8, color="#8b0000")


def plot_sobol(indices: pd.DataFrame, case: str, note: str = "", top: int = 15):
    """Horizontal bars of S1 and ST with confidence intervals, parameters ordered by ST, values labelled;
    a flagged index hatched and its flags named beside it."""
    outputs = list(dict.fromkeys(indices["output"]))
    figure, axes = output_grid(len(outputs), 5.5, 0.34 * min(top, indices["parameter"].nunique()) + 1.9)
    for ax, output in zip(axes, outputs):
        table = indices[(indices["output"] == output) & indices["index"].isin(["S1", "ST"])]
        wide = table.pivot(index="parameter", columns="index", values=["value", "conf", "flags"])
        wide = wide.sort_values(("value", "ST"), ascending=True).tail(top)
        positions = np.arange(len(wide))
        for offset, index, colour in ((-0.2, "S1", "tab:blue"), (0.2, "ST", "tab:orange")):
            flagged = wide[("flags", index)].fillna("") != ""
            bars = ax.barh(positions + offset, wide[("value", index)].astype(float), height=0.4,
                           xerr=wide[("conf", index)].astype(float), color=colour, label=index, capsize=2,
                           hatch=["//" if f else "" for f in flagged], edgecolor="black", linewidth=0.3)
            ax.bar_label(bars, [f"{v:.2f}" + (" !" if f else "") for v, f in zip(wide[("value", index)], flagged)],
                         fontsize=6, padding=2)
        ax.set_yticks(positions, wide.index, fontsize=8)
        ax.axvline(0, color="grey", linewidth=0.5)
        ax.axvline(1, color="grey", linewidth=0.5, linestyle=":")
        ax.set_title(_stability_title(output, indices[(indices["output"] == output) & (indices["index"] == "ST")]),
                     fontsize=9)
        ax.set_xlabel("Sobol index (bars: 95% bootstrap CI; hatched, !: flagged)", fontsize=8)
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color="tab:blue", label="S1"), Patch(color="tab:orange", label="ST"),
                           Patch(facecolor="white", edgecolor="black", hatch="//", label="flagged")],
                  loc="lower right", fontsize=7)
    figure.suptitle(f"Sobol indices, {case} (N={indices['n'].max()})")
    figure.tight_layout()
    _note(figure, note)
    return figure


def plot_morris(indices: pd.DataFrame, case: str, note: str = "", labelled: int = 8):
    """Morris mu*-sigma chart with mu* confidence intervals; the most influential parameters labelled,
    flagged ones ringed in red."""
    outputs = list(dict.fromkeys(indices["output"]))
    figure, axes = output_grid(len(outputs), 5, 4.7)
    for ax, output in zip(axes, outputs):
        rows = indices[indices["output"] == output]
        table = rows.pivot(index="parameter", columns="index", values=["value", "conf"]).astype(float)
        flags = rows[rows["index"] == "mu_star"].set_index("parameter")["flags"].fillna("")
        mu_star, sigma = table[("value", "mu_star")], table[("value", "sigma")]
        ax.errorbar(mu_star, sigma, xerr=table[("conf", "mu_star")], fmt="o", markersize=4, capsize=2, alpha=0.8)
        flagged = flags[flags != ""].index
        if len(flagged):
            ax.plot(mu_star[flagged], sigma[flagged], "o", mfc="none", mec="red", ms=9, label="flagged")
        limit = float(np.nanmax([mu_star.max(), sigma.max(), 1e-12])) * 1.05
        ax.plot([0, limit], [0, limit], color="grey", linestyle="--", linewidth=0.8, label="sigma = mu*")
        influential = mu_star[mu_star > 0.02 * mu_star.max()].sort_values(ascending=False)
        for name in influential.index[:labelled]:
            ax.annotate(name + (" !" if flags.get(name) else ""), (mu_star[name], sigma[name]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("mu* (mean absolute elementary effect)")
        ax.set_ylabel("sigma (interaction / non-linearity)")
        ax.set_title(_stability_title(output, rows[rows["index"] == "mu_star"]), fontsize=9)
        ax.legend(loc="upper left", fontsize=7)
    figure.suptitle(f"Morris screening, {case} (r={indices['n'].max()} trajectories)")
    figure.tight_layout()
    _note(figure, note)
    return figure


def plot_variance(noise: pd.DataFrame, case: str):
    """Per output, a run's variance split into parameters, seed noise shared by every point and seed noise per
    point (bars, with the parameters' bootstrap interval), and the noise left in the replicate means."""
    from sim.experiments.figures import pyplot

    plt = pyplot()
    noise = noise.iloc[::-1]
    figure, ax = plt.subplots(figsize=(9, 1.4 + 0.5 * len(noise)))
    positions = np.arange(len(noise))
    left = np.zeros(len(noise))
    for key, label, colour in (("parameters", "parameters", "tab:blue"),
                               ("seed_shared", "seed noise shared by every point", "navajowhite"),
                               ("seed_point", "seed noise differing between points", "tab:orange")):
        values = noise[key].fillna(0).to_numpy(dtype=float)
        ax.barh(positions, values, left=left, color=colour, label=label, height=0.6)
        left += values
    ax.errorbar(noise["parameters"], positions, xerr=[noise["parameters"] - noise["parameters_low"],
                                                      noise["parameters_high"] - noise["parameters"]],
                fmt="none", color="black", capsize=3, lw=1)
    for position, r in zip(positions, noise.itertuples()):
        text = (("does not vary" if r.run_variance == 0 else "one replicate: cannot separate") if np.isnan(r.parameters) else
                f"noise in the means of {r.replicates}: {r.noise_in_means:.0%}"
                + ("" if r.noise_in_means <= NOISY_MEANS else f" (!: {_needed(r.replicates_needed)} replicates "
                                                                f"for {NOISY_MEANS:.0%})"))
        ax.annotate(text, (1.01, position), va="center", fontsize=7, annotation_clip=False,
                    color="darkred" if r.noise_in_means > NOISY_MEANS else "black")
    ax.set_yticks(positions, [output_label(o) for o in noise["output"]], fontsize=8)
    ax.set(xlim=(0, 1), xlabel="share of a run's variance (bar: the parameters' share, bootstrap interval)")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    figure.suptitle(f"Seed noise and parameters, {case}", fontsize=10)
    figure.tight_layout()
    return figure


def plot_convergence(indices: pd.DataFrame, case: str, top: int = 5):
    """The main index (ST or mu*) of the most influential parameters against the sample size."""
    from sim.plots import style

    method = indices["method"].iloc[0]
    main_index = MAIN_INDEX[method]
    outputs = list(dict.fromkeys(indices["output"]))
    figure, axes = output_grid(len(outputs), 5, 3.5)
    for ax, output in zip(axes, outputs):
        table = indices[(indices["output"] == output) & (indices["index"] == main_index)]
        final = table[table["n"] == table["n"].max()]
        for number, name in enumerate(final.nlargest(top, "value")["parameter"]):
            line = table[table["parameter"] == name].sort_values("n")
            look = style(number)
            ax.errorbar(line["n"] * (1 + 0.03 * (number - 2)), line["value"], yerr=line["conf"].astype(float),
                        marker=look["marker"], linestyle=look["linestyle"], color=look["color"], capsize=2,
                        label=name)   # nudged sideways so that equal values stay visible
        ax.set_xscale("log", base=2)
        sizes = sorted(table["n"].unique())
        ax.set_xticks(sizes, [str(size) for size in sizes])
        ax.minorticks_off()
        ax.set_xlabel("base samples N" if method == "sobol" else "trajectories r")
        ax.set_ylabel(main_index)
        ax.set_title(output_label(output), fontsize=9)
        ax.legend(fontsize=7)
    figure.suptitle(f"Convergence of {main_index}, {case}")
    figure.tight_layout()
    return figure
