"""When an ABC-SMC calibration has converged, measured generation by generation from pyabc's history.

Per finished generation ``t`` (``generation_records``):
  epsilon, particles, samples (simulations, each particle simulating every trust R times), the
  acceptance rate, the effective sample size of the weights, wall time, and, from the second
  generation on:
  epsilon_change   |eps(t-1) - eps(t)| / eps(t-1): the tolerance has stopped falling when small
  posterior_shift  max over the free parameters of the change, between t-1 and t, of the weighted
                   median and of the 90% interval's width, each as a share of the prior range
                   (in the prior's own coordinates; log for a log prior): the posterior has stopped
                   moving and narrowing when small
  posterior_shift_2  the same between t-2 and t (from the third generation on): a posterior drifting slowly, by less
                   than the noise each generation, moves further over two
  ks_max           max over the parameters of the weighted Kolmogorov-Smirnov distance between the
                   two generations' marginals (recorded, not a stopping rule: with 100-200 particles
                   its sampling noise alone is about 0.1-0.2)
  posterior_shift_noise  the posterior shift between two bootstrap resamples of generation t (its particles drawn
                   with replacement, each keeping its weight, so each resample has about its ESS): the median
                   over SHIFT_NOISE_PAIRS pairs. Two resamples differ by two samples' Monte Carlo error, as two
                   generations of similar ESS do, so a posterior_shift no larger is a change that error cannot
                   tell from none (docs/calibration.md, "The posterior-shift rule measures noise at this ESS")

  noise_floor_median  (with ``--noise-floor``) the median distance the generation's best particles reach on fresh
                   seeds under its own distance (sim/calibration/noise.py): where epsilon is no larger, the tolerance
                   accepts the seed as much as the parameters, and a lower one mostly selects lucky runs

The stopping rule (``ConvergenceRule``): (epsilon_change < tol, or with ``noise_floor`` epsilon <= noise_floor_median) AND (posterior_shift < posterior_tol OR
posterior_shift <= posterior_shift_noise), the same for posterior_shift_2 where there is one, AND ESS >= min_ess,
all at the same generation. The noise grows as the ESS falls, so the ESS floor is what keeps a population carried by
a few particles from passing on noise alone. The history is pyabc's sqlite database, so the records of a resumed
calibration continue those of its earlier runs; they are rewritten to ``generations.csv`` in the calibration's
folder after every generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .priors import PriorSet

QUANTILES = (0.05, 0.5, 0.95)
SHIFT_NOISE_PAIRS = 100     # bootstrap pairs for posterior_shift_noise (its median moves by about 0.01 between seeds)


@dataclass(frozen=True)
class ConvergenceRule:
    tol: float                    # relative change of epsilon between generations
    posterior_tol: float = 0.1    # posterior_shift, as a share of the prior range (or within its noise)
    min_ess: float = 100.0        # effective sample size floor
    noise_floor: bool = False     # epsilon has also stopped falling usefully once inside the model's noise

    def met(self, record: dict) -> bool:
        return all(self.criteria(record).values())

    def criteria(self, record: dict) -> dict[str, bool]:
        change, shift, shift_2, noise = (record.get(key) for key in ("epsilon_change", "posterior_shift",
                                                                      "posterior_shift_2", "posterior_shift_noise"))

        def still(moved):     # below the tolerance, or within what resampling one generation alone moves
            return moved < self.posterior_tol or (noise is not None and moved <= noise)

        floor = record.get("noise_floor_median")
        inside_noise = self.noise_floor and floor is not None and record["epsilon"] <= floor
        return {"epsilon": (change is not None and change < self.tol) or inside_noise,
                "posterior": shift is not None and still(shift) and (shift_2 is None or still(shift_2)),
                "ess": record["ess"] >= self.min_ess}

    def describe(self) -> str:
        epsilon = f"epsilon change < {self.tol:g}" + (
            " or epsilon no larger than the median distance of the generation's best particles on fresh seeds"
            if self.noise_floor else "")
        return (f"{epsilon}, posterior shift over one and two generations < "
                f"{self.posterior_tol:g} of the prior range or no larger than its resampling noise, ESS >= {self.min_ess:g}")


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    return np.array([values[order][min(np.searchsorted(cumulative, q), len(values) - 1)] for q in QUANTILES])


def weighted_ks(a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray) -> float:
    """Largest gap between two weighted empirical distribution functions."""
    grid = np.union1d(a, b)

    def cdf(values, weights):
        order = np.argsort(values)
        cumulative = np.concatenate([[0.0], np.cumsum(weights[order]) / weights.sum()])
        return cumulative[np.searchsorted(values[order], grid, side="right")]

    return float(np.max(np.abs(cdf(a, wa) - cdf(b, wb))))


def ess(weights: np.ndarray) -> float:
    weights = np.asarray(weights, dtype=float)
    return float(weights.sum() ** 2 / np.sum(weights ** 2))


def _unit(frame: pd.DataFrame, priors: PriorSet) -> dict[str, np.ndarray]:
    """Every free parameter's particles in the prior's coordinates, 0..1."""
    out = {}
    for prior in priors.priors:
        if prior.name in frame:
            values = frame[prior.name].to_numpy(dtype=float)
            out[prior.name] = (np.array([prior.to_unit(v) for v in values]) if prior.log
                               else (values - prior.low) / (prior.high - prior.low))
    return out


def compare_generations(before: tuple[pd.DataFrame, np.ndarray], after: tuple[pd.DataFrame, np.ndarray],
                        priors: PriorSet) -> dict[str, float]:
    """posterior_shift and ks_max between two generations' weighted particles (see the module)."""
    (frame_a, wa), (frame_b, wb) = before, after
    unit_a, unit_b = _unit(frame_a, priors), _unit(frame_b, priors)
    shift, worst = _shift(unit_a, wa, unit_b, wb)
    ks = max((weighted_ks(unit_a[name], wa, unit_b[name], wb) for name in unit_a), default=0.0)
    return {"posterior_shift": float(shift), "posterior_shift_parameter": worst, "ks_max": float(ks)}


def _shift(unit_a: dict, wa: np.ndarray, unit_b: dict, wb: np.ndarray) -> tuple[float, str]:
    shift, worst = 0.0, ""
    for name in unit_a:
        qa, qb = _weighted_quantiles(unit_a[name], wa), _weighted_quantiles(unit_b[name], wb)
        moved = max(abs(qb[1] - qa[1]), abs((qb[2] - qb[0]) - (qa[2] - qa[0])))
        if moved >= shift:
            shift, worst = moved, name
    return shift, worst


def shift_noise(frame: pd.DataFrame, weights: np.ndarray, priors: PriorSet, pairs: int = SHIFT_NOISE_PAIRS,
                seed: int = 0) -> float:
    """posterior_shift_noise of one generation (see the module): seeded, so the same history gives the same value."""
    unit, weights = _unit(frame, priors), np.asarray(weights, dtype=float)
    rng = np.random.default_rng(seed)
    shifts = []
    for _ in range(pairs):
        a, b = rng.integers(0, len(weights), len(weights)), rng.integers(0, len(weights), len(weights))
        shifts.append(_shift({k: v[a] for k, v in unit.items()}, weights[a], {k: v[b] for k, v in unit.items()},
                             weights[b])[0])
    return float(np.median(shifts))


def generation_records(history, priors: PriorSet) -> list[dict]:
    """One record per finished generation, in order (see the module for the fields)."""
    populations = history.get_all_populations()
    populations = populations.loc[populations.t >= 0].sort_values("t")
    records, previous, before_previous, total = [], None, None, 0
    for row in populations.itertuples():
        particles, weights = history.get_distribution(m=0, t=int(row.t))
        weights = np.asarray(weights, dtype=float)
        total += int(row.samples)
        record = {"t": int(row.t), "epsilon": float(row.epsilon), "particles": int(row.particles),
                  "samples": int(row.samples), "simulations_total": total,
                  "acceptance_rate": row.particles / row.samples if row.samples else None,
                  "ess": ess(weights), "wall_time_seconds": float(row.wall_time),
                  "epsilon_change": None, "posterior_shift": None, "posterior_shift_parameter": "", "ks_max": None,
                  "posterior_shift_2": None, "posterior_shift_noise": shift_noise(particles, weights, priors)}
        if previous is not None:
            prev_eps = records[-1]["epsilon"]
            record["epsilon_change"] = abs(prev_eps - record["epsilon"]) / prev_eps if prev_eps > 0 else None
            record.update(compare_generations(previous, (particles, weights), priors))
        if before_previous is not None:
            record["posterior_shift_2"] = compare_generations(before_previous, (particles, weights),
                                                              priors)["posterior_shift"]
        records.append(record)
        previous, before_previous = (particles, weights), previous
    return records


def add_noise_floors(records: list[dict], floors: dict[int, float]) -> list[dict]:
    """Each record's ``noise_floor_median`` from ``floors`` (generation -> median; noise.noise_floors), None where
    its generation has none."""
    for record in records:
        record["noise_floor_median"] = floors.get(record["t"])
    return records


def write_generations(records: list[dict], path: Path, rule: ConvergenceRule | None = None) -> None:
    """generations.csv, rewritten whole (atomically) after every generation."""
    frame = pd.DataFrame(records)
    if rule is not None and records:
        frame["converged"] = [rule.met(r) for r in records]
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    frame.to_csv(tmp, index=False, float_format="%.6g")
    tmp.replace(path)


def progress_line(record: dict, rule: ConvergenceRule | None) -> str:
    def fmt(value, spec=".3g"):
        return "-" if value is None else format(value, spec)

    line = (f"generation {record['t']}: epsilon {fmt(record['epsilon'])} (change {fmt(record['epsilon_change'])}), "
            f"ESS {record['ess']:.0f} of {record['particles']}, acceptance {fmt(record['acceptance_rate'], '.1%')}, "
            f"posterior shift {fmt(record['posterior_shift'])}"
            + (f" ({record['posterior_shift_parameter']})" if record["posterior_shift_parameter"] else "")
            + (f" against noise {fmt(record.get('posterior_shift_noise'))}" if record["posterior_shift"] is not None
               else "")
            + (f", over two generations {fmt(record['posterior_shift_2'])}" if record.get("posterior_shift_2") is not None
               else "")
            + (f", best particles on fresh seeds {fmt(record['noise_floor_median'])}"
               if record.get("noise_floor_median") is not None else "")
            + f", KS {fmt(record['ks_max'])}, {record['simulations_total']} particles simulated, "
              f"{record['wall_time_seconds'] / 60:.1f} min")
    if rule is not None:
        met = rule.criteria(record)
        line += "; converged" if all(met.values()) else "; not yet: " + ", ".join(k for k, ok in met.items() if not ok)
    return line
