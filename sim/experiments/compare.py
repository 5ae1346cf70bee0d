"""What-if comparisons: a base scenario against variants across an ensemble of parameter sets.

Every (parameter set, replicate) pair runs in the base scenario and in each variant with the
same seed (common random numbers), so a difference is the variant's effect on that very
realisation. Differences are summarised per variant and output, weighted by the parameter sets'
weights (a calibrated posterior) or equally (the defaults, until calibration lands):

- ``difference``: the weighted mean difference (variant - base);
- ``ci_low``/``ci_high``: a 95% bootstrap interval for that mean (Monte Carlo uncertainty);
- ``interval_low``/``interval_high``: the 5th and 95th weighted percentiles of the paired
  differences (where 90% of realisations fall: parameter and stochastic uncertainty together);
- ``share_higher``: the weighted share of pairs in which the variant is higher.

Beside the differences, ``write_comparison`` reports, for the base and every variant, the weighted
share of runs at each CQC rating per inspection (``cqc_shares.csv``, ``cqc_shares.png``: "would
SATH have escaped inadequate?") and the weekly trajectories with 50%/90% bands
(``series_bands.csv``, ``compare_series.png``). Figures name the outputs with their units, the
base level, where the parameters come from and the scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.experiments.batch import RunSpec
from sim.experiments.figures import output_grid, pyplot, save
from sim.experiments.outputs import check_output_names, is_numeric_output, output_label, series_label
from sim.calibration.posterior import check_parameter_table
from sim.calibration.priors import split_particle
from sim.calibration.targets import TRUST_NAMES
from sim.params import PARAMETERS, default_params, validate_params
from sim.scenario import deep_merge, load_scenario

BOOTSTRAP_RESAMPLES = 2000
CONFIRM_RUNS = 400          # more runs than this need --yes
SERIES = ("quality", "practising_share", "l4l_complete")   # weekly series kept for the base-against-variant bands
BAND_QUANTILES = {"q05": 0.05, "q25": 0.25, "median": 0.5, "q75": 0.75, "q95": 0.95}
CQC_LIMITS = ((1, "inadequate | req. impr."), (2, "req. impr. | good"), (3, "good | outstanding"))
RATINGS = ("inadequate", "requires_improvement", "good", "outstanding")


def load_parameter_sets(path: str | None, max_sets: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Parameter sets as a frame with every parameter and a ``weight`` column summing to 1.

    ``path=None`` gives the defaults. Otherwise a CSV or parquet file with one row per set (a
    calibration posterior, calibration/posterior_<name>.csv, is one): columns are parameter names
    (missing ones keep their defaults), per-trust scenario fields ``TRUST.field.path`` and an
    optional ``weight``. ``max_sets`` draws that many sets by weight (with replacement; weights
    then equal).
    """
    if path is None:
        return pd.DataFrame([default_params()]).assign(weight=1.0)
    table = _read_table(Path(path))
    unknown = [column for column in table.columns if column not in PARAMETERS and column != "weight"
               and not is_trust_field(str(column))]
    if unknown:
        raise InputError(f"{path}: unknown column(s) {', '.join(map(str, unknown))}; allowed: parameter names "
                         f"(see sim/parameters.yaml), TRUST.field.path for {', '.join(TRUST_NAMES)}, and 'weight'")
    if table.empty:
        raise InputError(f"{path}: no parameter sets (the file has no rows)")
    weights = _weights(table, path)
    table = check_parameter_table(table, Path(path))   # numbers, in range, valid scenario fields
    parameters = table[[column for column in table.columns if column in PARAMETERS]]
    rows = [validate_params(_row_values(row), source=f"{path} row {number + 1}")
            for number, row in enumerate(parameters.to_dict("records"))]
    trust_fields = table[[column for column in table.columns if is_trust_field(str(column))]]
    sets = pd.concat([pd.DataFrame(rows), trust_fields.reset_index(drop=True)], axis=1).assign(weight=weights)
    if max_sets is not None and max_sets < len(sets):
        chosen = np.random.default_rng(seed).choice(len(sets), size=max_sets, replace=True, p=weights)
        sets = sets.iloc[chosen].reset_index(drop=True).assign(weight=1.0 / max_sets)
    return sets


def is_trust_field(column: str) -> bool:
    trust, _, field = column.partition(".")
    return trust in TRUST_NAMES and bool(field)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: parameter-set file not found")
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path)
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
    except Exception as error:  # pandas and pyarrow raise many kinds for a malformed file
        raise InputError(f"{path}: cannot read parameter sets ({error})") from None
    raise InputError(f"{path}: parameter sets must be a .csv or .parquet file")


def _row_values(row: dict) -> dict:
    return {name: value.item() if hasattr(value, "item") else value for name, value in row.items()}


def _weights(table: pd.DataFrame, path) -> np.ndarray:
    if "weight" not in table:
        return np.full(len(table), 1.0 / len(table))
    weights = pd.to_numeric(table["weight"], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise InputError(f"{path}: column 'weight' must hold non-negative numbers with a positive sum")
    return weights / weights.sum()


def compare_specs(scenarios: list[str], sets: pd.DataFrame, replicates: int, seed: int,
                  scale: float, end=None) -> list[RunSpec]:
    """Runs for every scenario (arm 0 is the base) x parameter set x replicate, with shared seeds.

    A set's ``TRUST.field`` values apply to every scenario built on that trust (its ``base`` chain
    ends at TRUST); the scenario's own changes to its base stay on top of them.
    """
    specs = []
    rows = sets.drop(columns="weight").to_dict("records")
    for arm, scenario in enumerate(scenarios):
        trust, own_changes = root_trust(scenario), changes_from_base(scenario)
        for set_index, row in enumerate(rows):
            params, trust_overrides = split_particle(row, [trust] if trust in TRUST_NAMES else [])
            overrides = deep_merge(trust_overrides.get(trust, {}), own_changes) if trust_overrides.get(trust) else {}
            for replicate in range(replicates):
                specs.append(RunSpec(
                    run_index=len(specs), scenario=scenario, params=params, overrides=overrides,
                    seed_index=set_index * replicates + replicate, base_seed=seed, scale=scale, end=end,
                    labels={"arm": arm, "param_set": set_index, "replicate": replicate,
                            "weight": float(sets["weight"].iloc[set_index]) / replicates},
                ))
    return specs


def root_trust(name: str) -> str:
    """The name at the end of a scenario's ``base`` chain (the trust a what-if is built on)."""
    scenario = load_scenario(name)
    while scenario.base:
        scenario = load_scenario(scenario.base)
    return scenario.name


def changes_from_base(name: str) -> dict:
    """The fields in which a scenario differs from its base (empty for a scenario without a base)."""
    scenario = load_scenario(name)
    if not scenario.base:
        return {}
    return _differences(scenario.model_dump(mode="json"), load_scenario(scenario.base).model_dump(mode="json"))


def _differences(changed: dict, original: dict) -> dict:
    differences = {}
    for key, value in changed.items():
        if key in ("name", "description", "base") or value == original.get(key):
            continue
        both_mappings = isinstance(value, dict) and isinstance(original.get(key), dict)
        differences[key] = _differences(value, original[key]) if both_mappings else value
    return differences


def check_compare_outputs(outputs: list[str]) -> None:
    check_output_names(outputs, [], "orgsim compare --outputs")
    ratings = [name for name in outputs if not is_numeric_output(name)]
    if ratings:
        raise InputError(f"orgsim compare --outputs: {', '.join(ratings)} are ratings (text); "
                         "compare numbers such as cqc_latest_score")


def paired_differences(runs: pd.DataFrame, scenarios: list[str], outputs: list[str]) -> pd.DataFrame:
    """Long table: one row per variant, output and (parameter set, replicate) pair."""
    keys = ["param_set", "replicate"]
    base = runs[runs["arm"] == 0].set_index(keys)
    frames = []
    for arm, variant in enumerate(scenarios[1:], start=1):
        other = runs[runs["arm"] == arm].set_index(keys).reindex(base.index)
        for output in outputs:
            frames.append(pd.DataFrame({
                "variant": variant, "output": output, "weight": base["weight"],
                "base": base[output].astype(float), "value": other[output].astype(float),
            }).reset_index())
    differences = pd.concat(frames, ignore_index=True)
    return differences.assign(difference=differences["value"] - differences["base"])


def summarise(differences: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rows = []
    for (variant, output), group in differences.groupby(["variant", "output"], sort=False):
        weights = group["weight"].to_numpy() / group["weight"].sum()
        difference = group["difference"].to_numpy()
        ci_low, ci_high = _bootstrap_mean_interval(difference, weights, seed)
        rows.append({
            "variant": variant, "output": output,
            "base_mean": float(np.dot(weights, group["base"])), "variant_mean": float(np.dot(weights, group["value"])),
            "difference": float(np.dot(weights, difference)), "ci_low": ci_low, "ci_high": ci_high,
            "interval_low": weighted_quantile(difference, weights, 0.05),
            "interval_high": weighted_quantile(difference, weights, 0.95),
            "share_higher": float(np.dot(weights, difference > 0)), "pairs": len(group),
        })
    return pd.DataFrame(rows)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) - 0.5 * weights[order]
    return float(np.interp(q * weights.sum(), cumulative, values[order]))


def _bootstrap_mean_interval(values: np.ndarray, weights: np.ndarray, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = [values[rng.choice(len(values), size=len(values), p=weights)].mean() for _ in range(BOOTSTRAP_RESAMPLES)]
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)


def describe_runs(sets: pd.DataFrame, posterior: str | None, max_sets: int | None, replicates: int,
                  scenarios: list[str], scale: float, end=None) -> str:
    """One line: how many runs, and of what (parameter sets and their source, replicates, scenarios, scale)."""
    runs = len(sets) * replicates * len(scenarios)
    return (f"{runs} runs = {parameter_source(sets, posterior, max_sets)} x {replicates} replicate(s) x "
            f"{len(scenarios)} scenario(s), at scale {scale:g}" + (f", to {end}" if end else ""))


def parameter_source(sets: pd.DataFrame, posterior: str | None, max_sets: int | None) -> str:
    if posterior is None:
        return "1 parameter set (the defaults, sim/parameters.yaml: uncalibrated)"
    drawn = f", drawn by weight (--max-sets {max_sets})" if max_sets else ""
    return f"{len(sets)} parameter set(s) from {Path(posterior).name}{drawn}"


def check_confirmed(description: str, runs: int, confirmed: bool) -> None:
    """Refuse a large comparison unless --yes was given: nothing has been written yet."""
    if runs > CONFIRM_RUNS and not confirmed:
        raise InputError(f"orgsim compare: {description}; more than {CONFIRM_RUNS} runs need --yes. Add --yes to "
                         "run them all, or make it smaller with --max-sets K (K parameter sets drawn by weight), "
                         "fewer --replicates or a smaller --scale")


def rating_shares(runs: pd.DataFrame, scenarios: list[str]) -> pd.DataFrame:
    """Per scenario and inspection (``cqc_<year>`` columns, and ``latest``): the weighted share of runs at
    each rating."""
    years = sorted(c[4:] for c in runs.columns if c.startswith("cqc_") and c[4:].isdigit())
    rows = []
    for arm, scenario in enumerate(scenarios):
        part = runs[runs["arm"] == arm]
        weights = part["weight"].to_numpy(dtype=float)
        for inspection, column in [*((y, f"cqc_{y}") for y in years), ("latest", "cqc_latest")]:
            if column not in part or part[column].isna().all():
                continue
            ratings = part[column].to_numpy()
            rows.append({"scenario": scenario, "role": "base" if arm == 0 else "variant", "inspection": inspection,
                         **{r: float(weights[ratings == r].sum() / weights.sum()) for r in RATINGS},
                         "runs": len(part)})
    return pd.DataFrame(rows)


def series_bands(series: pd.DataFrame, runs: pd.DataFrame, scenarios: list[str]) -> pd.DataFrame:
    """Per scenario, weekly series and week: weighted 5/25/50/75/95% quantiles over the runs."""
    labels = runs.set_index("run_index")[["arm", "weight"]]
    series = series.join(labels, on="run_index")
    variables = [c for c in series.columns if c not in ("trust", "week", "date", "run_index", "arm", "weight")]
    rows = []
    for (arm, week), part in series.groupby(["arm", "week"], sort=True):
        weights = part["weight"].to_numpy(dtype=float)
        for variable in variables:
            values = part[variable].to_numpy(dtype=float)
            rows.append({"scenario": scenarios[arm], "arm": arm, "variable": variable, "week": week,
                         "date": part["date"].iloc[0],
                         **{name: weighted_quantile(values, weights, q) for name, q in BAND_QUANTILES.items()}})
    order = {v: i for i, v in enumerate(variables)}
    return pd.DataFrame(rows).sort_values(["arm", "variable", "week"], kind="stable",
                                          key=lambda c: c.map(order) if c.name == "variable" else c
                                          ).reset_index(drop=True)


def plot_differences(table: pd.DataFrame, base: str, context: str = ""):
    """One panel per output: each variant's mean difference, its 95% CI (thick) and 90% interval (thin)."""
    outputs = list(dict.fromkeys(table["output"]))
    variants = list(dict.fromkeys(table["variant"]))
    figure, axes = output_grid(len(outputs), 4.8, 0.5 * len(variants) + 1.9)
    for ax, output in zip(axes, outputs):
        part = table[table["output"] == output].set_index("variant").loc[variants]
        positions = np.arange(len(variants))
        ax.hlines(positions, part["interval_low"], part["interval_high"], color="tab:blue", linewidth=1)
        ax.hlines(positions, part["ci_low"], part["ci_high"], color="tab:blue", linewidth=4)
        ax.plot(part["difference"], positions, "o", color="black")
        ax.axvline(0, color="grey", linestyle="--", linewidth=0.8)
        ax.set_yticks(positions, variants)
        ax.invert_yaxis()
        ax.set_title(f"{output_label(output)}\n{base} (base): {part['base_mean'].iloc[0]:.3g}", fontsize=9)
        ax.set_xlabel(f"variant - {base}", fontsize=8)
    figure.suptitle(f"What-if: variants against {base} (dot: mean difference; thick: 95% CI; thin: 90% of "
                    "realisations)" + (f"\n{context}" if context else ""), fontsize=10)
    figure.tight_layout()
    return figure


def plot_rating_shares(shares: pd.DataFrame, base: str, context: str = ""):
    """Per inspection, a stacked bar per scenario: the share of runs at each CQC rating, labelled."""
    from sim.plots import RATING_COLOURS as COLOURS, RATING_NAMES as SHORT

    inspections = list(dict.fromkeys(shares["inspection"]))
    scenarios = list(dict.fromkeys(shares["scenario"]))
    figure, axes = output_grid(len(inspections), 4.6, 0.55 * len(scenarios) + 1.6)
    for ax, inspection in zip(axes, inspections):
        part = shares[shares["inspection"] == inspection].set_index("scenario").reindex(scenarios)
        left = np.zeros(len(scenarios))
        for rating in RATINGS:
            values = part[rating].fillna(0).to_numpy()
            ax.barh(np.arange(len(scenarios)), values, left=left, color=COLOURS[rating], label=SHORT[rating])
            for y, (x, v) in enumerate(zip(left, values)):
                if v >= 0.08:
                    ax.text(x + v / 2, y, f"{v:.0%}", ha="center", va="center", fontsize=7)
            left += values
        ax.set_yticks(np.arange(len(scenarios)), [f"{s} (base)" if s == base else s for s in scenarios], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of runs", fontsize=8)
        ax.set_title("latest rating" if inspection == "latest" else f"{inspection} inspection", fontsize=9)
    axes[0].legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.12), ncol=4)
    latest = shares[shares["inspection"] == "latest"].set_index("scenario")
    headline = "; ".join(f"{s}: {latest.loc[s, 'inadequate']:.0%}" for s in scenarios if s in latest.index)
    figure.suptitle("CQC rating per inspection, share of runs" + (f"\ninadequate at the latest inspection: {headline}"
                                                                   if headline else "")
                    + (f"\n{context}" if context else ""), fontsize=10)
    figure.tight_layout()
    return figure


def plot_series_bands(bands: pd.DataFrame, base: str, context: str = ""):
    """Rows: variants; columns: weekly series. The base (grey) and the variant (colour): median, 50% and 90% bands."""
    from sim.plots import draw_band

    variables = list(dict.fromkeys(bands["variable"]))
    variants = [s for s in dict.fromkeys(bands.loc[bands["arm"] > 0, "scenario"])]
    plt = pyplot()
    figure, axes = plt.subplots(len(variants), len(variables), figsize=(4.6 * len(variables), 3.0 * len(variants)),
                                squeeze=False, sharex=True)
    base_bands = bands[bands["arm"] == 0]
    for row, variant in enumerate(variants):
        for col, variable in enumerate(variables):
            ax = axes[row][col]
            draw_band(ax, base_bands[base_bands["variable"] == variable], "#7f7f7f", f"{base} (base)")
            draw_band(ax, bands[(bands["scenario"] == variant) & (bands["arm"] > 0) & (bands["variable"] == variable)],
                      "#1f77b4", variant)
            if variable == "quality":
                for limit, name in CQC_LIMITS:
                    ax.axhline(limit, color="#c0392b", lw=0.7, ls="--")
                    ax.annotate(name, (0.01, limit), xycoords=("axes fraction", "data"), fontsize=6, va="bottom",
                                color="#c0392b")
            ax.set_title(series_label(variable), fontsize=9)
            ax.grid(alpha=0.3)
            ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        axes[row][0].legend(fontsize=7, loc="upper left")
    title = "Base against variant over time (median, 50% and 90% of runs)"
    figure.suptitle(title + (f"\n{context}" if context else ""), fontsize=10)
    figure.tight_layout()
    return figure


def write_comparison(out_dir: Path, runs: pd.DataFrame, series: pd.DataFrame | None, scenarios: list[str],
                     outputs: list[str], context: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, list[Path]]:
    """Write the differences, the CQC rating shares and the bands (CSV and figures); return the differences'
    summary, the rating shares and the paths written."""
    differences = paired_differences(runs, scenarios, outputs)
    table = summarise(differences, seed=seed)
    shares = rating_shares(runs, scenarios)
    written = [out_dir / "compare.csv", out_dir / "differences.csv", out_dir / "cqc_shares.csv"]
    table.to_csv(written[0], index=False)
    differences.to_csv(written[1], index=False)
    shares.to_csv(written[2], index=False)
    written.append(save(plot_differences(table, scenarios[0], context), out_dir / "compare.png"))
    if not shares.empty:
        written.append(save(plot_rating_shares(shares, scenarios[0], context), out_dir / "cqc_shares.png"))
    if series is not None and not series.empty:
        bands = series_bands(series, runs, scenarios)
        bands.to_csv(out_dir / "series_bands.csv", index=False, float_format="%.6g")
        written += [out_dir / "series_bands.csv",
                    save(plot_series_bands(bands, scenarios[0], context), out_dir / "compare_series.png")]
    return table, shares, written
