"""Global sensitivity analysis of experiment results with SALib: Morris (mu*, sigma) and Sobol (S1, ST, S2).

Replicates are averaged per sample point first (they share seeds across points: common random
numbers), then SALib analyses the averages. Saltelli and Morris samples are blocks (one block of
rows per base sample or trajectory), so a prefix of the sample is itself a valid, smaller design:
indices are computed at N/4, N/2 and N (or r/4, r/2, r trajectories) from the same runs to show
convergence without extra runs.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from SALib.analyze import morris as morris_analysis
from SALib.analyze import sobol as sobol_analysis

from sim.errors import InputError
from sim.experiments.designs import salib_problem, sample_points
from sim.experiments.figures import output_grid, save
from sim.experiments.schema import Experiment

INDEX_COLUMNS = ["case", "output", "method", "n", "runs", "parameter", "parameter_2", "index", "value", "conf"]


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
    """The long table of indices (see INDEX_COLUMNS) for every case, output and convergence size."""
    problem = salib_problem(experiment)
    X = sample_points(experiment).to_numpy()
    outputs = experiment.outputs.final
    rows = []
    for case, means in point_means(runs, outputs, len(X)).items():
        for output in outputs:
            Y = means[output].to_numpy(dtype=float)
            if experiment.design.kind == "sobol":
                output_rows = _sobol_rows(problem, Y, experiment, num_resamples, conf_level, seed)
            else:
                output_rows = _morris_rows(problem, X, Y, experiment, num_resamples, conf_level, seed)
            rows += [{"case": case, "output": output, **row} for row in output_rows]
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)


def _sobol_rows(problem, Y, experiment, num_resamples, conf_level, seed) -> list[dict]:
    second_order = experiment.design.second_order
    D = problem["num_vars"]
    block = 2 * D + 2 if second_order else D + 2
    rows = []
    for n in convergence_sizes(experiment.design.samples):
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            result = sobol_analysis.analyze(problem, Y[: n * block], calc_second_order=second_order,
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
            result = morris_analysis.analyze(problem, X[: r * block], Y[: r * block], num_resamples=num_resamples,
                                             conf_level=conf_level, num_levels=experiment.design.levels, seed=seed)
        common = {"method": "morris", "n": r, "runs": r * block * experiment.replicates, "parameter_2": ""}
        for i, name in enumerate(problem["names"]):
            rows.append({**common, "parameter": name, "index": "mu_star",
                         "value": result["mu_star"][i], "conf": result["mu_star_conf"][i]})
            rows.append({**common, "parameter": name, "index": "sigma", "value": result["sigma"][i], "conf": np.nan})
            rows.append({**common, "parameter": name, "index": "mu", "value": result["mu"][i], "conf": np.nan})
    return rows


def write_analysis(indices: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write indices.csv and the figures; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "indices.csv"
    indices.to_csv(csv_path, index=False)
    written = [csv_path]
    for case, case_indices in indices.groupby("case", sort=False):
        method = case_indices["method"].iloc[0]
        final = case_indices[case_indices["n"] == case_indices["n"].max()]
        plot = plot_sobol if method == "sobol" else plot_morris
        written.append(save(plot(final, case), out_dir / f"{method}_{_slug(case)}.png"))
        written.append(save(plot_convergence(case_indices, case), out_dir / f"convergence_{_slug(case)}.png"))
    return written


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def plot_sobol(indices: pd.DataFrame, case: str, top: int = 15):
    """Horizontal bars of S1 and ST with confidence intervals, parameters ordered by ST."""
    outputs = list(dict.fromkeys(indices["output"]))
    figure, axes = output_grid(len(outputs), 5, 0.3 * min(top, indices["parameter"].nunique()) + 1.5)
    for ax, output in zip(axes, outputs):
        table = indices[(indices["output"] == output) & indices["index"].isin(["S1", "ST"])]
        wide = table.pivot(index="parameter", columns="index", values=["value", "conf"])
        wide = wide.sort_values(("value", "ST"), ascending=True).tail(top)
        positions = np.arange(len(wide))
        for offset, index, colour in ((-0.2, "S1", "tab:blue"), (0.2, "ST", "tab:orange")):
            ax.barh(positions + offset, wide[("value", index)], height=0.4, xerr=wide[("conf", index)],
                    color=colour, label=index, capsize=2)
        ax.set_yticks(positions, wide.index)
        ax.axvline(0, color="grey", linewidth=0.5)
        ax.set_title(output)
        ax.set_xlabel("Sobol index (bars: 95% bootstrap CI)")
        ax.legend(loc="lower right")
    figure.suptitle(f"Sobol indices, {case} (N={indices['n'].max()})")
    figure.tight_layout()
    return figure


def plot_morris(indices: pd.DataFrame, case: str, labelled: int = 8):
    """Morris mu*-sigma chart with mu* confidence intervals; the most influential parameters labelled."""
    outputs = list(dict.fromkeys(indices["output"]))
    figure, axes = output_grid(len(outputs), 5, 4.5)
    for ax, output in zip(axes, outputs):
        table = indices[indices["output"] == output].pivot(index="parameter", columns="index", values=["value", "conf"])
        mu_star, sigma = table[("value", "mu_star")], table[("value", "sigma")]
        ax.errorbar(mu_star, sigma, xerr=table[("conf", "mu_star")], fmt="o", markersize=4, capsize=2, alpha=0.8)
        limit = float(np.nanmax([mu_star.max(), sigma.max(), 1e-12])) * 1.05
        ax.plot([0, limit], [0, limit], color="grey", linestyle="--", linewidth=0.8, label="sigma = mu*")
        influential = mu_star[mu_star > 0.02 * mu_star.max()].sort_values(ascending=False)
        for name in influential.index[:labelled]:
            ax.annotate(name, (mu_star[name], sigma[name]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("mu* (mean absolute elementary effect)")
        ax.set_ylabel("sigma (interaction / non-linearity)")
        ax.set_title(output)
        ax.legend(loc="upper left", fontsize=7)
    figure.suptitle(f"Morris screening, {case} (r={indices['n'].max()} trajectories)")
    figure.tight_layout()
    return figure


def plot_convergence(indices: pd.DataFrame, case: str, top: int = 5):
    """The main index (ST or mu*) of the most influential parameters against the sample size."""
    method = indices["method"].iloc[0]
    main_index = "ST" if method == "sobol" else "mu_star"
    outputs = list(dict.fromkeys(indices["output"]))
    figure, axes = output_grid(len(outputs), 5, 3.5)
    for ax, output in zip(axes, outputs):
        table = indices[(indices["output"] == output) & (indices["index"] == main_index)]
        final = table[table["n"] == table["n"].max()]
        for name in final.nlargest(top, "value")["parameter"]:
            line = table[table["parameter"] == name].sort_values("n")
            ax.errorbar(line["n"], line["value"], yerr=line["conf"], marker="o", capsize=2, label=name)
        ax.set_xscale("log", base=2)
        sizes = sorted(table["n"].unique())
        ax.set_xticks(sizes, [str(size) for size in sizes])
        ax.minorticks_off()
        ax.set_xlabel("base samples N" if method == "sobol" else "trajectories r")
        ax.set_ylabel(main_index)
        ax.set_title(output)
        ax.legend(fontsize=7)
    figure.suptitle(f"Convergence of {main_index}, {case}")
    figure.tight_layout()
    return figure
