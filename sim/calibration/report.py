"""The fit report of a calibrated posterior: report.md and PNG figures in one folder.

Contents: acceptance checks per trust, and the recorded cause of each one missed
(calibration/known_misses.yaml); every target's observation against the posterior-predictive
median and 50%/90% intervals; the five CQC trajectories; posterior marginals and pairwise
correlations (ridges |r| > 0.5 marked); ABC diagnostics and convergence measures per generation
(epsilon, acceptance rate, effective sample size, posterior shift); which parameters the data pin
down (90% posterior interval / prior range); the ranked probability score of every CQC inspection;
every pattern as fitted, predicted or checked with pass or fail; when given, the leave-one-trust-out
predictions (direction and RPS of the left-out trust), an ``orgsim validate`` folder's claims, an
``orgsim calibrate-sbc`` folder's rank histograms and an ``orgsim calibrate-noise`` record (epsilon against the
distances the best particles reach on fresh seeds).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.errors import InputError  # noqa: E402
from sim.experiments.outputs import output_label  # noqa: E402
from sim.plots import RATING_COLOURS, RATING_NAMES, finish, plot_ensemble_trajectories  # noqa: E402

from .ensemble import run_posterior_ensemble  # noqa: E402
from .known_misses import KnownMisses, load_known_misses  # noqa: E402
from .posterior import Posterior, load_posterior  # noqa: E402
from .provenance import provenance  # noqa: E402
from .targets import DEFAULT_TARGETS, RATINGS, TRUST_NAMES, TargetSet, load_targets  # noqa: E402

COUNT_TOLERANCE = 0.30      # acceptance: L4L complete/in progress and RPIWs within 30% of published
RATIO_TOLERANCE = 0.10      # acceptance: lead-time reduction within 0.10
ACCEPTANCE_COUNTS = ("l4l_complete_2021_03", "l4l_in_progress_2021_03", "rpiws_2019_07")
# acceptance check (as named in known_misses.yaml) -> its column in acceptance_rows
CHECK_COLUMNS = {"latest_cqc": "latest ok", "direction": "direction ok",
                 **{c: c for c in ACCEPTANCE_COUNTS}, "lead_time_reduction": "lead_time_reduction"}
RIDGE = 0.5                 # |weighted correlation| above which a pair is a ridge (a trade-off)
PINNED, PARTLY = 0.5, 0.8   # 90% posterior width / prior width below which a parameter counts as pinned
SHORT, COLOURS = RATING_NAMES, RATING_COLOURS


# -- numbers ---------------------------------------------------------------------------------
def _rating(score: float) -> str:
    return RATINGS[int(np.clip(round(score), 0, 3))]


def direction(before: float, after: float) -> str:
    return "improved" if after > before else "declined" if after < before else "unchanged"


def latest_ordinal_targets(targets: TargetSet) -> dict[str, object]:
    latest = {}
    for t in targets.targets:
        if t.kind == "ordinal" and (t.trust not in latest or t.statistic > latest[t.trust].statistic):
            latest[t.trust] = t
    return latest


def acceptance_rows(fit: dict, targets: TargetSet, trusts) -> list[dict]:
    """The issue's acceptance checks, per trust, from the ensemble's target summaries."""
    rows = []
    latest = latest_ordinal_targets(targets)
    for trust in trusts:
        row = {"trust": trust}
        if trust in latest and latest[trust].id in fit:
            t, f = latest[trust], fit[latest[trust].id]
            before = RATINGS.index(targets.cqc_before[trust]) if trust in targets.cqc_before else None
            row["latest CQC (obs / median)"] = f"{t.observed} / {_rating(f['median'])}"
            row["latest ok"] = _rating(f["median"]) == t.observed
            if before is not None:
                row["direction (obs / sim)"] = (f"{direction(before, t.observed_value)} / "
                                                f"{direction(before, round(f['median']))}")
                row["direction ok"] = direction(before, t.observed_value) == direction(before, round(f["median"]))
        for statistic in ACCEPTANCE_COUNTS:
            key = f"{trust}.{statistic}"
            if key in fit:
                obs, med = fit[key]["observed_value"], fit[key]["median"]
                row[statistic] = abs(med - obs) <= COUNT_TOLERANCE * obs
        key = f"{trust}.lead_time_reduction"
        if key in fit:
            row["lead_time_reduction"] = abs(fit[key]["median"] - fit[key]["observed_value"]) <= RATIO_TOLERANCE
        rows.append(row)
    return rows


def checks_met(rows: list[dict]) -> str:
    """One line that counts the acceptance checks met, per check and in all (rows of acceptance_rows)."""
    columns = [c for c in dict.fromkeys(k for row in rows for k in row)
               if any(isinstance(row.get(c), bool) for row in rows)]
    met = {c: sum(row.get(c) is True for row in rows) for c in columns}
    judged = {c: sum(isinstance(row.get(c), bool) for row in rows) for c in columns}
    per_check = ", ".join(f"{c} {met[c]}/{judged[c]}" for c in columns)
    return f"Checks met: **{sum(met.values())} of {sum(judged.values())}** ({per_check})."


def missed_check_rows(rows: list[dict], known: KnownMisses) -> list[dict]:
    """Every check missed in ``rows`` (of acceptance_rows) with its recorded cause and explanation;
    a miss with none recorded is named unexplained."""
    missed = []
    for row in rows:
        for check, column in CHECK_COLUMNS.items():
            if row.get(column) is False:
                entry = known.explanation(row["trust"], check)
                missed.append({"trust": row["trust"], "check": check,
                               "cause": entry.cause if entry else "**unexplained**",
                               "why": " ".join(entry.why.split()) if entry else
                               "no entry in the known-misses file: a miss new to this posterior"})
    return missed


def parameter_table(posterior: Posterior) -> pd.DataFrame:
    """Prior range, posterior median and 90% interval, and how much the data narrowed each prior."""
    from pyabc.weighted_statistics import weighted_quantile   # pyabc takes seconds to import: only when needed

    rows = []
    priors = {p["name"]: p for p in posterior.manifest.get("priors", [])}
    for name in posterior.free_columns():
        values = posterior.frame[name].to_numpy(dtype=float)
        lo, med, hi = (float(weighted_quantile(values, posterior.weights, alpha=a)) for a in (0.05, 0.5, 0.95))
        prior = priors.get(name, {"low": values.min(), "high": values.max(), "log": False})
        if prior.get("log"):
            ratio = (math.log(hi) - math.log(lo)) / (math.log(prior["high"]) - math.log(prior["low"]))
        else:
            ratio = (hi - lo) / (prior["high"] - prior["low"])
        verdict = "pinned down" if ratio < PINNED else "partly" if ratio < PARTLY else "not pinned down"
        rows.append({"parameter": name, "kind": "per trust" if name.partition(".")[0] in TRUST_NAMES else "shared",
                     "prior": f"[{prior['low']:g}, {prior['high']:g}]",
                     "median": med, "90% interval": f"[{lo:.3g}, {hi:.3g}]",
                     "width / prior width": ratio, "identified (< 0.5)": ratio < PINNED, "verdict": verdict})
    return pd.DataFrame(rows)


def weighted_correlations(posterior: Posterior) -> pd.DataFrame:
    columns = posterior.free_columns()
    values = posterior.frame[columns].to_numpy(dtype=float)
    cov = np.cov(values, rowvar=False, aweights=posterior.weights)
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    return pd.DataFrame(corr, index=columns, columns=columns)


def rating_shares(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted share of the runs at each rating (scores 0-3), in RATINGS order."""
    values, weights = np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
    keep = np.isfinite(values)
    values, weights = values[keep], weights[keep]
    return np.array([weights[np.round(values) == k].sum() for k in range(len(RATINGS))]) / weights.sum()


def ranked_probability_score(shares, observed: int) -> float:
    """RPS of an ordinal forecast: mean over the K-1 thresholds of the squared gap between the forecast's and the
    observation's cumulative probabilities; 0 is a certain, right forecast, 1 a certain forecast at the far end."""
    forecast = np.cumsum(shares)[:-1]
    outcome = (np.arange(len(shares) - 1) >= observed).astype(float)
    return float(np.mean((forecast - outcome) ** 2))


UNIFORM_SHARES = np.full(len(RATINGS), 1.0 / len(RATINGS))


def rps_rows(stats: pd.DataFrame, targets: TargetSet, trusts) -> list[dict]:
    """Per trust and inspection: the ensemble's rating shares, the ranked probability score against the published
    rating, the RPS of a uniform forecast (1/4 each) and the skill 1 - RPS / RPS(uniform)."""
    rows = []
    weights = stats["weight"].to_numpy(dtype=float)
    for t in targets.targets:
        if t.kind != "ordinal" or t.trust not in trusts or t.id not in stats:
            continue
        shares = rating_shares(stats[t.id].to_numpy(), weights)
        observed = RATINGS.index(t.observed)
        rps, reference = ranked_probability_score(shares, observed), ranked_probability_score(UNIFORM_SHARES, observed)
        rows.append({"trust": t.trust, "inspection": t.statistic.partition(".")[2], "observed": SHORT[t.observed],
                     **{SHORT[r]: float(v) for r, v in zip(RATINGS, shares)},
                     "RPS": rps, "RPS uniform": reference, "skill": 1 - rps / reference})
    return rows


def rps_summary(rows: list[dict]) -> str:
    if not rows:
        return ""
    mean, reference = np.mean([r["RPS"] for r in rows]), np.mean([r["RPS uniform"] for r in rows])
    better = sum(r["RPS"] < r["RPS uniform"] for r in rows)
    return (f"Mean RPS {mean:.3f} against {reference:.3f} for the uniform forecast (skill {1 - mean / reference:.2f}); "
            f"better than uniform at {better} of {len(rows)} inspections.")


SHARE_TO_HOLD = 0.6   # an ordering or choice holds in at least this share of runs
SMALL_COUNT = 1.0     # a count passes within 30% or within this many (counts of 0-3 ALT places)


def pattern_status(target, scale: float, calibrated) -> str:
    """How a target stands to a posterior: fitted (in its distance), predicted (its trust was left out) or
    checked (never in the distance: role checked, or a survey measure below full scale)."""
    from .targets import is_survey_statistic

    trusts = set(target.pooled) if target.pooled is not None else {target.trust}
    if not trusts & set(calibrated):
        return "predicted"
    if target.role == "checked" or (is_survey_statistic(target.statistic) and scale < 1):
        return "checked"
    return "fitted"


def pattern_rows(fit: dict, stats: pd.DataFrame, targets: TargetSet, scale: float, calibrated,
                 trusts=TRUST_NAMES) -> list[dict]:
    """Every target as fitted, predicted or checked, with pass or fail by the rule of its kind."""
    weights = stats["weight"].to_numpy(dtype=float)
    rows = []
    for t in targets.targets:
        f = fit.get(t.id)
        if f is None or (t.trust != "all" and t.trust not in trusts):
            continue
        if f["median"] is None:   # a survey measure below full scale
            rows.append({"pattern": t.id, "status": pattern_status(t, scale, calibrated), "observed": t.observed,
                         "simulated": "not comparable (survey below full scale)", "rule": "-", "pass": None})
            continue
        obs, med = f["observed_value"], f["median"]
        if t.kind == "count":
            ok, rule, shown = abs(med - obs) <= max(COUNT_TOLERANCE * obs, SMALL_COUNT), "median within 30% (or 1)", f"{med:.3g}"
        elif t.kind == "ratio":
            ok, rule, shown = abs(med - obs) <= RATIO_TOLERANCE, f"median within {RATIO_TOLERANCE}", f"{med:.3g}"
        elif t.kind == "ordinal":
            ok, rule, shown = _rating(med) == t.observed, "median rating", SHORT[_rating(med)]
        else:
            share = float(np.sum(weights[(stats[t.id] == 1).to_numpy()]) / weights.sum())
            ok, rule, shown = share >= SHARE_TO_HOLD, f"holds in >= {SHARE_TO_HOLD:.0%} of runs", f"holds in {share:.0%}"
        rows.append({"pattern": t.id, "status": pattern_status(t, scale, calibrated), "observed": t.observed,
                     "simulated": shown, "rule": rule, "pass": ok})
    return rows


def pattern_summary(rows: list[dict]) -> str:
    parts = []
    for status in ("fitted", "predicted", "checked"):
        chosen = [r for r in rows if r["status"] == status]
        if chosen:
            judged = [r for r in chosen if r["pass"] is not None]
            parts.append(f"{status} {sum(r['pass'] for r in judged)} of {len(judged)} pass"
                         + (f" ({len(chosen) - len(judged)} not comparable)" if len(judged) < len(chosen) else ""))
    return "Patterns: " + "; ".join(parts) + "."


# -- figures ---------------------------------------------------------------------------------
def _short(name: str) -> str:
    return name.replace("programme.", "").replace("_per_year", "/yr")


def _fit_trusts(fit: dict) -> list[str]:
    present = {f.get("trust") for f in fit.values()}
    return [t for t in TRUST_NAMES if t in present]


def plot_target_fit(fit: dict, targets: TargetSet, path: Path, note: str = "", orderings: list[dict] = ()) -> None:
    """Every count and ratio target: the ensemble's median, 50% bar and 90% line per trust, observed X; and
    the network orderings (rows of ``ordering_rows``): the share of runs in which each holds."""
    statistics = [s for s in dict.fromkeys(t.statistic for t in targets.targets if t.kind in ("count", "ratio"))]
    trusts = _fit_trusts(fit) or list(TRUST_NAMES)
    ncols = 3
    nrows = math.ceil((len(statistics) + bool(orderings)) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    for ax, statistic in zip(axes.flat, statistics):
        for x, trust in enumerate(trusts):
            f = fit.get(f"{trust}.{statistic}")
            if f is None or f["median"] is None:
                continue
            ax.plot([x, x], [f["q05"], f["q95"]], color="#7f8c8d", lw=1.5)
            ax.plot([x, x], [f["q25"], f["q75"]], color="#2c3e50", lw=5, solid_capstyle="butt")
            ax.plot(x, f["median"], "o", color="white", mec="#2c3e50", ms=5)
            ax.plot(x, f["observed_value"], "x", color="#c0392b", ms=9, mew=2)
        ax.set_xticks(range(len(trusts)), trusts, fontsize=8)
        ax.set_xlim(-0.5, len(trusts) - 0.5)
        ax.set_title(output_label(statistic), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    if orderings:
        ax = axes.flat[len(statistics)]
        shares = [row["share of runs where it holds"] for row in orderings]
        bars = ax.barh(range(len(shares)), shares, color="#2c3e50")
        ax.bar_label(bars, [f"{v:.0%}" for v in shares], fontsize=7, padding=2)
        ax.set_yticks(range(len(shares)), [row["ordering"].replace(".survey.", ": ") for row in orderings], fontsize=7)
        ax.set_xlim(0, 1.15)
        ax.invert_yaxis()
        ax.set_title("Survey orderings (published: they hold): share of runs", fontsize=9)
    for ax in axes.flat[len(statistics) + bool(orderings):]:
        ax.axis("off")
    finish(fig, "Observed (red x) vs posterior predictive (white dot: median; dark bar: 50%; grey line: 90%)",
           path, note)


def plot_cqc_trajectories(summary: dict, targets: TargetSet, path: Path, note: str = "") -> None:
    """Per trust and inspection: the share of runs at each CQC rating (labelled), the published rating named."""
    trusts = [t for t in TRUST_NAMES if t in summary["trusts"]]
    fig, axes = plt.subplots(1, len(trusts), figsize=(3.2 * len(trusts) + 0.6, 3.6), sharey=True, squeeze=False)
    observed = {}
    for t in targets.targets:
        if t.kind == "ordinal":
            observed.setdefault(t.trust, {})[t.statistic.split(".")[1]] = t.observed
    for ax, trust in zip(axes[0], trusts):
        shares = summary["trusts"][trust].get("cqc", {})
        years = sorted(shares)
        for x, year in enumerate(years):
            bottom = 0.0
            for rating in RATINGS:
                share = shares[year].get(rating, 0.0)
                ax.bar(x, share, bottom=bottom, color=COLOURS[rating], width=0.6)
                if share >= 0.06:
                    ax.text(x, bottom + share / 2, f"{share:.0%}", ha="center", va="center", fontsize=7)
                bottom += share
        ax.set_xticks(range(len(years)), [f"{y}\nobserved: {SHORT[observed[trust][y]]}" if y in observed.get(trust, {})
                                          else y for y in years], fontsize=8)
        ax.set_title(f"{trust} (before: {SHORT.get(targets.cqc_before.get(trust), '?')})", fontsize=9)
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("share of runs at each rating")
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[r]) for r in RATINGS]
    axes[0][-1].legend(handles, [SHORT[r] for r in RATINGS], fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    finish(fig, "CQC rating per inspection: share of posterior-predictive runs at each rating, and the published "
                "rating", path, note)


def ensemble_note(summary: dict) -> str:
    return (f"Posterior-predictive ensemble over {Path(summary['posterior']).name}: {summary['draws']} draws "
            f"({summary['weighting']}), scale {summary['scale']}, seed {summary['seed']}.")


def write_ensemble_figures(folder, out_dir=None, targets_path=DEFAULT_TARGETS) -> list[Path]:
    """Draw an ensemble's figures from its files (ensemble_summary.json, ensemble_series.csv) without rerunning it:
    fit_targets.png, cqc_trajectories.png and, if the series were kept, trajectories.png; into ``out_dir``
    (default: the ensemble's folder). Returns the paths written."""
    folder = Path(folder)
    out_dir = Path(out_dir) if out_dir else folder
    summary_path = folder / "ensemble_summary.json"
    if not summary_path.is_file():
        raise InputError(f"{folder}: no ensemble_summary.json (run orgsim run --all --posterior FILE --out {folder})")
    summary = json.loads(summary_path.read_text())
    targets = load_targets(targets_path)
    note = ensemble_note(summary)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "fit_targets.png", out_dir / "cqc_trajectories.png"]
    statistics = folder / "ensemble_statistics.csv"
    orderings = ordering_rows(pd.read_csv(statistics), targets) if statistics.is_file() else []
    plot_target_fit(summary["targets"], targets, written[0], note, orderings)
    plot_cqc_trajectories(summary, targets, written[1], note)
    if (folder / "ensemble_series.csv").is_file():
        written.append(out_dir / "trajectories.png")
        plot_ensemble_trajectories(pd.read_csv(folder / "ensemble_series.csv"), written[-1], note)
    return written


def plot_marginals(posterior: Posterior, path: Path) -> None:
    columns = posterior.free_columns()
    priors = {p["name"]: p for p in posterior.manifest.get("priors", [])}
    ncols = 4
    nrows = math.ceil(len(columns) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.4 * nrows), squeeze=False)
    for ax, name in zip(axes.flat, columns):
        prior = priors.get(name)
        bins = np.linspace(prior["low"], prior["high"], 21) if prior else 20
        ax.hist(posterior.frame[name], bins=bins, weights=posterior.weights, color="#2c7fb8", alpha=0.8)
        ax.set_title(_short(name), fontsize=8)
        ax.tick_params(labelsize=7)
        if prior:
            ax.set_xlim(prior["low"], prior["high"])
    for ax in axes.flat[len(columns):]:
        ax.axis("off")
    fig.suptitle("Posterior marginals (weighted); x axis spans the prior range", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_correlations(corr: pd.DataFrame, path: Path) -> None:
    n = len(corr)
    fig, ax = plt.subplots(figsize=(0.45 * n + 3, 0.45 * n + 2))
    image = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(n), [_short(c) for c in corr.columns], rotation=90, fontsize=7)
    ax.set_yticks(range(n), [_short(c) for c in corr.index], fontsize=7)
    fig.colorbar(image, ax=ax, label="weighted correlation")
    values = corr.to_numpy()
    for i in range(n):
        for j in range(n):
            if i != j and np.isfinite(values[i, j]) and abs(values[i, j]) > RIDGE:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="black", lw=1.5))
                ax.text(j, i, f"{values[i, j]:.1f}", ha="center", va="center", fontsize=6)
    ax.set_title(f"Posterior pairwise correlations (boxed: |r| > {RIDGE}, a ridge)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_diagnostics(generations: list[dict], path: Path, population: int | None = None) -> None:
    panels = [("epsilon", "epsilon"), ("acceptance_rate", "acceptance rate"), ("ess", "effective sample size"),
              ("epsilon_change", "relative change of epsilon"), ("posterior_shift", "posterior shift (share of prior)")]
    panels = [p for p in panels if any(g.get(p[0]) is not None for g in generations)]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        points = [(g["t"], g[key]) for g in generations if g.get(key) is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-")
        ax.set_xlabel("generation")
        ax.set_title(label, fontsize=10)
        if key == "ess" and population:
            ax.axhline(population, color="grey", lw=0.8, ls="--")
    axes[0][0].set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- markdown ----------------------------------------------------------------------------------
def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _table(rows: list[dict]) -> str:
    if not rows:
        return "(none)\n"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def target_rows(fit: dict, targets: TargetSet, trusts=TRUST_NAMES) -> list[dict]:
    rows = []
    for t in targets.targets:
        f = fit.get(t.id)
        if f is None or (t.trust != "all" and t.trust not in trusts) or f["median"] is None:
            continue   # (a survey measure below full scale: not comparable)
        inside = f["q05"] <= t.observed_value <= f["q95"]
        if t.kind == "ordinal":
            shown = {"median": _rating(f["median"]), "50%": f"{_rating(f['q25'])} .. {_rating(f['q75'])}",
                     "90%": f"{_rating(f['q05'])} .. {_rating(f['q95'])}"}
        elif t.kind == "ordering":
            shown = {"median": f"rank {f['median']:.0f}", "50%": f"{f['q25']:.0f} .. {f['q75']:.0f}",
                     "90%": f"{f['q05']:.0f} .. {f['q95']:.0f}"}
        else:
            shown = {"median": f["median"], "50%": f"{f['q25']:.3g} .. {f['q75']:.3g}",
                     "90%": f"{f['q05']:.3g} .. {f['q95']:.3g}"}
        rows.append({"target": t.id, "kind": t.kind, "weight": t.weight, "observed": t.observed, **shown,
                     "observed inside 90%": inside, "source": t.source})
    return rows


def ordering_rows(stats: pd.DataFrame, targets: TargetSet) -> list[dict]:
    rows = []
    weights = stats["weight"].to_numpy(dtype=float)
    for t in targets.targets:
        if t.kind == "ordering" and t.id in stats and stats[t.id].notna().any():
            held = float(np.sum(weights[(stats[t.id] == 1).to_numpy()]) / weights.sum())
            rows.append({"ordering": t.id, "share of runs where it holds": held})
    return rows


SURVEY_COLUMNS = ("respondents", "actors", "dyad_reciprocity", "isolated_share", "brokerage_simple_share",
                  "named_respondent_share", "named_participant_share", "named_kpo_share")


def survey_measure_rows(summary: dict) -> list[dict]:
    """Per trust, the median of each survey measure over the ensemble (the orderings compare these;
    the shares of who was named say why a survey holds together). Empty below full scale."""
    rows = []
    for trust, s in summary["trusts"].items():
        stats = s.get("statistics", {})
        medians = {m: (stats.get(f"survey.{m}") or {}).get("median") for m in SURVEY_COLUMNS}
        if any(v is not None for v in medians.values()):
            rows.append({"trust": trust, **medians})
    return rows


def _header(posterior: Posterior) -> list[str]:
    m = posterior.manifest
    lines = [f"# Fit report: `{posterior.path.name}`", ""]
    if m:
        lines += [
            f"- calibrated trusts: {', '.join(m.get('trusts_calibrated', []))}"
            + (f" (left out: **{m['leave_out']}**)" if m.get("leave_out") else ""),
            f"- scale {m.get('scale')}, population {m.get('population_size')}, seed {m.get('seed')}",
            f"- generations {m.get('generations')}, final epsilon {_fmt(m.get('final_epsilon'))}, "
            f"simulations {m.get('total_simulations')} ({m.get('trust_simulations')} trust runs), "
            f"wall time {m.get('wall_time_seconds')} s ({_fmt(m.get('simulations_per_second'))} particles/s), "
            f"{m.get('sampler')}",
            f"- stopping rules: {m.get('budget')}"
            + (f"; stopped because {m['stopped_because']}" if m.get("stopped_because") else ""),
            f"- distance: {m.get('distance')}",
            f"- calibration started at commit {(m.get('started_at') or {}).get('git_commit', m.get('git_commit'))}, "
            f"exported at {m.get('git_commit')}; orgsim {m.get('package_version')}, pyabc {m.get('pyabc_version')}",
            f"- transition: {m.get('transition', 'pyabc default')}",
        ]
    changed = posterior.changed_defaults()
    if changed or posterior.missing_parameters:
        lines += ["", "**Warning: the model's parameters changed since this calibration.** "
                  f"Defaults changed: {changed or 'none'}; parameters not in the posterior (run at their "
                  f"current defaults): {posterior.missing_parameters or 'none'}."]
    return lines + [""]


def write_fit_report(posterior_path, out_dir, *, workers: int = 1, scale: float | None = None,
                     n_draws: int | None = None, seed: int = 1, scheduler: str | None = None,
                     loto: list | None = None, loto_draws: int | None = None, targets_path=DEFAULT_TARGETS,
                     progress: bool = True, trusts=TRUST_NAMES, end=None, validate_dir=None, sbc_dir=None,
                     noise_file=None) -> Path:
    """Run the posterior-predictive ensemble (and any leave-one-out predictions); write report.md."""
    out_dir = Path(out_dir)
    posterior = load_posterior(posterior_path)
    targets = load_targets(targets_path)
    noise = noise_section(Path(noise_file), posterior) if noise_file else []   # bad input fails before any run
    if sbc_dir and not (Path(sbc_dir) / "ranks.csv").is_file():
        raise InputError(f"--sbc: {sbc_dir} holds no ranks.csv (run orgsim calibrate-sbc)")
    known = load_known_misses()
    scale = scale or posterior.manifest.get("scale", 1.0)
    end = dt.date.fromisoformat(end) if isinstance(end, str) else end
    summary = run_posterior_ensemble(posterior_path, trusts, out_dir / "ensemble", seed, workers, scale,
                                     n_draws=n_draws, scheduler=scheduler, targets_path=targets_path,
                                     progress=progress, end=end, figures=False)
    stats = pd.read_csv(out_dir / "ensemble" / "ensemble_statistics.csv")
    fit = summary["targets"]
    write_ensemble_figures(out_dir / "ensemble", out_dir, targets_path)
    lines = _header(posterior)
    lines += [f"Posterior-predictive ensemble: {summary['draws']} draws ({summary['weighting']}), "
              f"scale {scale}, seed {seed}; numbers below are weighted quantiles over the draws.", ""]
    lines += ["## Acceptance checks", "",
              "Latest CQC rating is the median outcome; direction (vs the 2014/15 rating) is right; "
              f"L4L complete, L4L in progress and RPIWs by July 2019 within {COUNT_TOLERANCE:.0%} of the "
              f"published value; lead-time reduction within {RATIO_TOLERANCE}.", "",
              _table(acceptance := acceptance_rows(fit, targets, summary["trusts"])), "", checks_met(acceptance), ""]
    if missed := missed_check_rows(acceptance, known):
        lines += ["### Why the missed checks are missed", "",
                  "From `calibration/known_misses.yaml`. Cause: *mechanism*, the model lacks one; *input*, a "
                  "programme input the check depends on is not published; *calibration*, the model can meet "
                  "it but the calibration did not pin down what sets it, or meets it only by losing another "
                  "check. The evidence is in docs/calibration.md, \"The shipped calibration\".", "",
                  _table(missed)]
    calibrated = posterior.manifest.get("trusts_calibrated") or list(trusts)
    calibration_scale = float(posterior.manifest.get("scale", scale))
    patterns = pattern_rows(fit, stats, targets, calibration_scale, calibrated, trusts)
    lines += ["## Every pattern: fitted, predicted or checked", "",
              "*Fitted*: in this calibration's ABC distance (a fit, not a test; where a free input of the trust sets "
              "it, the targets file's note says so). *Predicted*: of a trust the calibration never saw. *Checked*: "
              "never in the distance (a checked target, or a survey measure below full scale). Pass rules: counts "
              f"within {COUNT_TOLERANCE:.0%} (or {SMALL_COUNT:g}), ratios within {RATIO_TOLERANCE}, ratings as the median, "
              f"orderings and value-stream choices in at least {SHARE_TO_HOLD:.0%} of runs.", "",
              _table(patterns), "", pattern_summary(patterns), ""]
    lines += ["## Every target: observed vs posterior predictive", "", "![fit](fit_targets.png)", "",
              _table(target_rows(fit, targets))]
    lines += ["## Network orderings (December 2018 survey)", "", _table(ordering_rows(stats, targets))]
    if survey := survey_measure_rows(summary):
        lines += ["", "Median survey measures per trust. Respondents reach each other only through the people "
                  "they name in common: the last three columns are the shares of named people who also answered, "
                  "who are L4L participants and who work in the KPO (docs/ODD.md 7.10).", "", _table(survey)]
    lines += ["## Trajectories", "", "Median, 50% and 90% bands over the ensemble's runs, week by week; X marks "
              "the published ratings at their inspections and the counts at their census dates.", "",
              "![trajectories](trajectories.png)", ""]
    lines += ["## CQC trajectories", "", "![cqc](cqc_trajectories.png)", "",
              _table([{"trust": trust, "year": year, **shares}
                      for trust, s in summary["trusts"].items() for year, shares in s["cqc"].items()])]
    rps = rps_rows(stats, targets, calibrated)
    lines += ["## Ranked probability score of the CQC ratings", "",
              "Per trust and inspection, the ensemble's share of runs at each rating is a forecast of the published "
              "rating; its ranked probability score (RPS: mean squared gap of the cumulative shares over the three "
              "thresholds between the four ratings) is 0 for a certain, right forecast and grows with the probability "
              "put on ratings far from the observed one. The uniform forecast (a quarter on each rating) is the "
              "reference; skill = 1 - RPS / RPS(uniform), above 0 when the model beats it. These ratings were fitted, "
              "so this measures the fit; the leave-one-trust-out sections give the same score for predictions.", "",
              _table(rps), "", rps_summary(rps), ""]
    lines += _posterior_sections(posterior, out_dir)
    lines += noise
    predictions, sections = [], []
    lotos = [_loto_section(loto_path, out_dir, workers, scale, loto_draws or n_draws, seed, scheduler,
                           targets, targets_path, progress, trusts, end) for loto_path in loto or []]
    # in trust order, whatever order the files were given in (a shell glob sorts them by name)
    for row, section in sorted(lotos, key=lambda loto_result: TRUST_NAMES.index(loto_result[0]["trust"])):
        predictions.append(row)
        sections += section
    if predictions:
        lines += ["## Leave-one-trust-out: every prediction", "",
                  "Each row is a trust predicted by a calibration that never saw its data (same checks "
                  "as above).", "", _table(predictions), "", checks_met(predictions), ""]
    lines += sections
    if validate_dir:
        lines += validate_section(Path(validate_dir), posterior)
    if sbc_dir:
        lines += sbc_section(Path(sbc_dir), out_dir)
    lines += ["", f"_Report written {provenance()['created_utc']} at commit {provenance()['git_commit']}._", ""]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines))
    return report


def _posterior_sections(posterior: Posterior, out_dir: Path) -> list[str]:
    lines = []
    if len(posterior.free_columns()) == 0:
        return lines
    plot_marginals(posterior, out_dir / "posterior_marginals.png")
    corr = weighted_correlations(posterior)
    plot_correlations(corr, out_dir / "posterior_correlations.png")
    table = parameter_table(posterior)
    shared = table[table["kind"] == "shared"]
    pinned_shared = int(shared["identified (< 0.5)"].sum())
    lines += ["## Parameters: what the data pin down (identifiability)", "",
              f"A parameter is *identified* (pinned down) when its 90% posterior interval is under {PINNED:.0%} of "
              f"its prior range, *partly* under {PARTLY:.0%}, otherwise *not pinned down*: the targets do not "
              "constrain it beyond the prior, and its posterior says nothing the prior did not.", "",
              f"Identified: **{int(table['identified (< 0.5)'].sum())} of {len(table)}** free parameters; "
              f"{pinned_shared} of {len(shared)} shared behavioural parameters "
              + ("(at least half, as the calibration issue asks)." if len(shared) and pinned_shared >= len(shared) / 2
                 else "(fewer than half: the report must say why the data cannot pin the others, or the calibration "
                      "has not converged; see the ABC diagnostics).")
              + ("" if posterior.manifest.get("converged") else
                 f" The calibration has not converged (last ESS {_last_ess(posterior)}): these widths are provisional "
                 "and would narrow, or move, with more generations."),
              "", _table(table.to_dict("records")), "![marginals](posterior_marginals.png)", "",
              "![correlations](posterior_correlations.png)", ""]
    strong = [{"pair": f"{a} / {b}", "correlation": float(corr.loc[a, b])}
              for i, a in enumerate(corr.index) for b in corr.columns[i + 1:] if abs(corr.loc[a, b]) > RIDGE]
    lines += [f"Pairwise ridges (|r| > {RIDGE}): pairs the data constrain only together, a trade-off along which the "
              "fit is about equally good. A parameter not identified alone may be identified in such a combination.", "",
              _table(strong)]
    generations = posterior.manifest.get("generation_table", [])
    if generations:
        population = posterior.manifest.get("population_size")
        plot_diagnostics(generations, out_dir / "abc_diagnostics.png", population)
        last = generations[-1]
        lines += ["## ABC diagnostics and convergence", "",
                  "Per generation: epsilon (the acceptance threshold of the weighted distance), the acceptance rate, "
                  "the effective sample size (ESS) of the importance weights, and from the second generation the "
                  "relative change of epsilon and the posterior shift (the largest change of any parameter's weighted "
                  "median or 90% interval width, as a share of its prior range). A calibration has converged when "
                  "epsilon and the posterior stop moving while the ESS stays high; a low ESS means few particles carry "
                  "the posterior and its intervals are unreliable.", "",
                  f"Stopping rule: {posterior.manifest.get('convergence_rule') or 'no convergence rule (clock or budget only)'}; "
                  f"stopped because {posterior.manifest.get('stopped_because', '?')}. Last generation: ESS "
                  f"{last['ess']:.0f} of {last['particles']}, acceptance {last['acceptance_rate']:.1%}"
                  + (f", epsilon change {last['epsilon_change']:.3g}, posterior shift {last['posterior_shift']:.3g}"
                     if last.get("posterior_shift") is not None else "")
                  + (f" (against {last['posterior_shift_noise']:.3g} between two resamples of the generation: a "
                     "smaller shift is within Monte Carlo error)"
                     if last.get("posterior_shift") is not None and last.get("posterior_shift_noise") is not None
                     else "")
                  + (". **Converged** by that rule." if posterior.manifest.get("converged") else
                     ". **Not converged**: treat the intervals as provisional."),
                  "", "![diagnostics](abc_diagnostics.png)", "", _table(generations)]
    return lines


def _last_ess(posterior: Posterior) -> str:
    generations = posterior.manifest.get("generation_table") or []
    return f"{generations[-1]['ess']:.0f} of {generations[-1]['particles']}" if generations else "unknown"


def validate_section(folder: Path, posterior: Posterior) -> list[str]:
    """The claims of an `orgsim validate` folder (validate.csv, validate.json), with the parameter sets it used."""
    table_file, record_file = folder / "validate.csv", folder / "validate.json"
    if not table_file.is_file():
        raise InputError(f"--validate: {folder} holds no validate.csv (run orgsim validate --posterior FILE --out {folder})")
    table = pd.read_csv(table_file)
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    used = record.get("posterior")
    same = used and Path(used).name == posterior.path.name
    counts = table["status"].value_counts()
    rows = [{"claim": row["claim"] + (f" [{row['part']}]" if isinstance(row.get("part"), str) and row["part"] else ""),
             "outcome": row.get("outcome"), "effect": row.get("effect"),
             "90% interval": f"[{row['interval_low']:.3g}, {row['interval_high']:.3g}]"
             if np.isfinite(row.get("interval_low", np.nan)) else "-", "status": row["status"]}
            for row in table.to_dict("records")]
    return ["## The evaluation's causal claims (`orgsim validate`)", "",
            f"From `{folder}`: {counts.get('pass', 0)} pass, {counts.get('fail', 0)} fail, "
            f"{counts.get('not available', 0)} not available; parameter sets: {used or 'the documented defaults'}"
            + ("" if same else f" (**not** this report's posterior `{posterior.path.name}`)") + ".", "",
            _table(rows)]


def noise_section(path: Path, posterior: Posterior) -> list[str]:
    """An `orgsim calibrate-noise` record: epsilon against the distances the best particles reach on fresh seeds."""
    from .noise import markdown

    if not path.is_file():
        raise InputError(f"--noise: {path} does not exist (run orgsim calibrate-noise; it writes noise_floor.json)")
    try:
        record = json.loads(path.read_text())
        body = markdown(record).split("\n", 2)[2]      # without its title
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"--noise: {path} is not an orgsim calibrate-noise record ({error})") from None
    generations = posterior.manifest.get("generations")
    same = generations is not None and record.get("generation") == generations - 1
    return ["## Epsilon against the model's noise (`orgsim calibrate-noise`)", "",
            f"From `{path}`" + ("" if same else f" (**not** this posterior's last generation: the record is of "
                                                 f"generation {record.get('generation')})") + ".", "", body]


def sbc_section(folder: Path, out_dir: Path) -> list[str]:
    """An `orgsim calibrate-sbc` folder's rank histograms and table, with what they show."""
    import shutil

    from .sbc import sbc_table, sbc_verdict

    ranks_file = folder / "ranks.csv"
    if not ranks_file.is_file():
        raise InputError(f"--sbc: {folder} holds no ranks.csv (run orgsim calibrate-sbc)")
    manifest = json.loads((folder / "manifest.json").read_text()) if (folder / "manifest.json").is_file() else {}
    options = manifest.get("options", {})
    table = sbc_table(pd.read_csv(ranks_file))
    if (folder / "sbc_ranks.png").is_file():
        shutil.copyfile(folder / "sbc_ranks.png", out_dir / "sbc_ranks.png")
    return ["## Simulation-based calibration of the pipeline", "",
            f"On a reduced configuration ({', '.join(options.get('parameters', []))}; trusts "
            f"{', '.join(options.get('trusts', []))}, scale {options.get('scale')}, population {options.get('population')}): "
            "true parameter sets drawn from the prior, their simulated data calibrated against as the real data are, "
            "and the rank of each truth among the posterior draws. Uniform ranks (inside the grey band) mean the "
            "pipeline's posteriors are neither too narrow nor too wide nor biased; it checks the machinery, not the "
            f"model's fit to the trusts. Run at commit {manifest.get('git_commit', 'unknown')}.", "", "![sbc](sbc_ranks.png)", "", _table(table.to_dict("records")), "",
            sbc_verdict(table), ""]


def _loto_section(loto_path, out_dir, workers, scale, n_draws, seed, scheduler, targets, targets_path,
                  progress, trusts=TRUST_NAMES, end=None) -> tuple[dict, list[str]]:
    """The left-out trust's acceptance row and its report section."""
    loto = load_posterior(loto_path)
    left_out = loto.manifest.get("leave_out")
    if left_out not in TRUST_NAMES:
        raise InputError(f"{loto_path}: its manifest names no left-out trust; give a posterior made with "
                         "orgsim calibrate --leave-out TRUST")
    summary = run_posterior_ensemble(loto_path, trusts, out_dir / f"loto_{left_out}", seed, workers, scale,
                                     n_draws=n_draws, scheduler=scheduler, targets_path=targets_path,
                                     progress=progress, end=end, figures=False)
    fit = summary["targets"]
    row = acceptance_rows(fit, targets, [left_out])[0]
    stats = pd.read_csv(out_dir / f"loto_{left_out}" / "ensemble_statistics.csv")
    rps = rps_rows(stats, targets, [left_out])
    latest = [r for r in rps if r["inspection"] == max(x["inspection"] for x in rps)] if rps else []
    if latest:
        row["latest RPS (uniform)"] = f"{latest[0]['RPS']:.3f} ({latest[0]['RPS uniform']:.3f})"
    calibrated = loto.manifest.get("trusts_calibrated") or [t for t in trusts if t != left_out]
    patterns = [p for p in pattern_rows(fit, stats, targets, float(loto.manifest.get("scale", scale)), calibrated,
                                        [left_out]) if p["status"] == "predicted"]
    made = (f"recomputed without {left_out} from calibration {loto.manifest['source_calibration']}'s own "
            f"simulations by importance sampling, ESS {loto.manifest['ess']:.0f} of {loto.manifest['accepted']} "
            "accepted (orgsim calibrate-loto)" if loto.manifest.get("source_calibration")
            else f"calibrated without {left_out}")
    return row, [f"## Leave-one-trust-out: {left_out} predicted from the other four", "",
            f"Posterior `{Path(loto_path).name}` ({made}; its unpublished programme "
            "inputs are the scenario file's values, since no data of it were used, so its L4L and RPIW counts "
            "test those assumed paces as much as the model).", "",
            _table([row]), "Ranked probability score of its CQC ratings (predicted, never fitted):", "",
            _table(rps), "", rps_summary(rps), "", _table(patterns), "", pattern_summary(patterns) if patterns else "",
            "", _table(target_rows(fit, targets, [left_out]))]
