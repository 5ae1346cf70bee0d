"""Which outputs are safe at which staff scale: the five trusts at several scales against full scale.

    .venv/bin/python benchmarks/scale_check.py                       # 5 scales x 10 seeds x 5 trusts = 250 runs
    .venv/bin/python benchmarks/scale_check.py --seeds 4 --scales 0.05,1.0 --end 2019-07-31   # a quick look

Every trust runs at the default parameters with seeds 0..S-1 at each scale (the runs go through the
batch runner into ``<out>/runs``, so an interrupted check resumes). For every numeric output of the
run summary (read by name, so outputs added to the model are checked too) and every trust, the
mean at scale s is compared with the mean at full scale:

  relative difference     = (mean_s - mean_1) / |mean_1|
  standardised difference = (mean_s - mean_1) / (run-to-run standard deviation at full scale)
  noise                   = 2 x standard error of that difference, relative to |mean_1|

A trust is close to full scale when its relative difference is within 10%, or its standardised
difference within 0.25 (a mean near zero, such as SATH's quality index, makes any relative
difference large; a shift of a quarter of one run's spread is not what separates scenarios).
Per output and scale the verdict over the five trusts is

  safe    every trust close to full scale
  noisy   some trust not close, but within the noise: more seeds needed to tell
  biased  some trust not close and beyond the noise: do not use this scale for this output

Written to ``<out>``: ``scale_check.csv`` (one row per trust, output and scale) and
``scale_check.md`` (per output and scale: the largest relative difference over the trusts and the
verdict), which is also printed. docs/experiments.md, "Which outputs are safe at which scale",
quotes it.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from sim.experiments.batch import OutputSelection, RunSpec, run_batch
from sim.params import default_params
from sim.runner import TRUSTS

TOLERANCE = 0.10            # relative difference
SD_TOLERANCE = 0.25         # difference in run-to-run standard deviations at full scale
SPEC_COLUMNS = {"run_index", "scenario", "overrides", "seed_index", "base_seed", "scale", "end", "seed"}


def specs(scales: list[float], seeds: int, end: dt.date | None, base_seed: int = 2026) -> list[RunSpec]:
    params = default_params()
    cells = [(trust, scale, seed) for trust in TRUSTS for scale in scales for seed in range(seeds)]
    return [RunSpec(run_index=index, scenario=trust, params=params, seed_index=seed, base_seed=base_seed,
                    scale=scale, end=end, labels={"seed": seed})
            for index, (trust, scale, seed) in enumerate(cells)]


def numeric_outputs(runs: pd.DataFrame) -> list[str]:
    """Numeric output columns that vary at all (constants such as ``staff`` say nothing about scale)."""
    return [c for c in runs.columns if c not in SPEC_COLUMNS and not c.startswith("param_")
            and pd.api.types.is_numeric_dtype(runs[c]) and not pd.api.types.is_bool_dtype(runs[c])
            and runs.groupby("scenario")[c].nunique().max() > 1]


def compare_with_full_scale(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per trust, output and scale: mean, sd, relative difference from full scale and its noise."""
    full = runs["scale"].max()
    rows = []
    for output in numeric_outputs(runs):
        for (trust, scale), values in runs.groupby(["scenario", "scale"])[output]:
            values = values.dropna().astype(float)
            reference = runs.loc[(runs["scenario"] == trust) & (runs["scale"] == full), output].dropna().astype(float)
            difference = values.mean() - reference.mean()
            se = float(np.sqrt(values.var(ddof=1) / len(values) + reference.var(ddof=1) / len(reference)))
            denominator = abs(reference.mean())
            relative = difference / denominator if denominator > 0 else (0.0 if difference == 0 else np.inf)
            spread = reference.std(ddof=1)
            standardised = difference / spread if spread > 0 else (0.0 if difference == 0 else np.inf)
            rows.append({"output": output, "trust": trust, "scale": scale, "runs": len(values),
                         "mean": values.mean(), "sd": values.std(ddof=1), "full_scale_mean": reference.mean(),
                         "relative_difference": relative, "standardised_difference": standardised,
                         "relative_noise": 2 * se / denominator if denominator > 0 else np.inf})
    return pd.DataFrame(rows)


def judge(group: pd.DataFrame) -> tuple[str, str]:
    """The verdict over the trusts of one output and scale, and the trust that decides it ('' if safe)."""
    relative, standardised = group["relative_difference"].abs(), group["standardised_difference"].abs()
    off = (relative > TOLERANCE) & (standardised > SD_TOLERANCE)
    if not off.any():
        return "safe", ""
    beyond_noise = off & (relative > group["relative_noise"])
    worst = standardised[beyond_noise if beyond_noise.any() else off].idxmax()
    return ("biased" if beyond_noise.any() else "noisy"), group.loc[worst, "trust"]


def verdict_table(table: pd.DataFrame) -> pd.DataFrame:
    """Rows: outputs; columns: scales below full; cells: a relative difference and the verdict: the largest
    over the trusts if safe, else that of the trust that decides the verdict (named)."""
    cells = {}
    for (output, scale), group in table.groupby(["output", "scale"], sort=False):
        verdict, trust = judge(group)
        relative = group.set_index("trust")["relative_difference"].abs()
        size = relative[trust] if trust else relative.max()
        shown = f"{size:.0%}" if np.isfinite(size) else "n/a"
        cells.setdefault(output, {})[scale] = f"{shown} {verdict}" + (f" ({trust})" if trust else "")
    frame = pd.DataFrame.from_dict(cells, orient="index")
    return frame[sorted(frame.columns)[:-1]]     # the last is full scale itself


def markdown(frame: pd.DataFrame, seeds: int) -> str:
    columns = [f"scale {scale:g}" for scale in frame.columns]
    lines = [f"Relative difference of the mean from full scale ({seeds} seeds per trust and scale, default "
             "parameters): the largest over the five trusts, or that of the trust named. "
             f"safe: every trust within {TOLERANCE:.0%} or within {SD_TOLERANCE} run-to-run standard deviations; "
             "noisy: some trust further off, but within 2 standard errors; biased: further off and beyond the "
             "noise.", "",
             "| output | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| `{output}` | " + " | ".join(str(v) for v in row) + " |" for output, row in frame.iterrows()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="0.05,0.1,0.25,0.5,1.0",
                        help="comma-separated scales; the largest is the reference")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per trust and scale (10)")
    parser.add_argument("--end", type=dt.date.fromisoformat,
                        help="stop the runs at this date (outputs after it are not checked)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (1)")
    parser.add_argument("--out", type=Path, default=Path("results/scale_check"), help="folder (results/scale_check)")
    args = parser.parse_args()
    scales = sorted(float(s) for s in args.scales.split(","))

    result = run_batch(specs(scales, args.seeds, args.end), args.out / "runs", OutputSelection(), workers=args.workers,
                       description={"kind": "scale check", "scales": scales, "seeds": args.seeds})
    table = compare_with_full_scale(result.runs)
    table.to_csv(args.out / "scale_check.csv", index=False, float_format="%.6g")
    text = markdown(verdict_table(table), args.seeds)
    (args.out / "scale_check.md").write_text(text)
    print(text)
    print(f"wrote {args.out / 'scale_check.csv'} and {args.out / 'scale_check.md'}")


if __name__ == "__main__":
    main()
