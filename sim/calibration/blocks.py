"""Calibration in blocks: a first block's posterior becomes a truncated prior of the next calibration.

A block (``orgsim calibrate --fit FAMILIES --priors BLOCK_PRIORS``) fits a few parameters against the targets
that inform them most, the other parameters at their defaults: one trust's L4L paces against its L4L censuses,
say (docs/calibration.md, "Calibration in blocks"). The main calibration then draws each of these parameters
uniformly from the range the block's final population spans, widened on each side by ``widen`` times that span
and kept inside the block's prior. With several blocks (one per trust), a parameter that several of them free
(a shared one) gets the union of their ranges. Truncating a prior to a region that holds the posterior leaves the
posterior as it was and spends no simulations where the data rule a parameter out (Deistler, Goncalves and
Macke 2022, truncated sequential posterior estimation); the widening covers what the block could not see, the
other parameters moving from their defaults.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.errors import InputError

from .posterior import Posterior, load_posterior
from .targets import TRUST_NAMES


def truncated_ranges(posterior: Posterior, widen: float = 0.25) -> dict[str, tuple[float, float]]:
    """Each free parameter of the block: [lowest - widen x span, highest + widen x span] of its final
    population, inside the block's prior; rounded outward to 3 significant digits of the prior's range."""
    if widen < 0:
        raise InputError(f"--widen: {widen} is not allowed; give a share >= 0")
    priors = {p["name"]: (p["low"], p["high"]) for p in posterior.manifest.get("priors", [])}
    if not priors:
        raise InputError(f"{posterior.path}: its manifest lists no priors; is it a calibration's posterior?")
    ranges = {}
    for name, (prior_low, prior_high) in priors.items():
        values = posterior.frame[name].to_numpy(dtype=float)
        span = values.max() - values.min()
        step = 10 ** (np.floor(np.log10(prior_high - prior_low)) - 2)    # outward rounding keeps every value in
        low = max(prior_low, np.floor((values.min() - widen * span) / step) * step)
        high = min(prior_high, np.ceil((values.max() + widen * span) / step) * step)
        ranges[name] = (round(float(low), 10), round(float(high), 10))
    return ranges


def union_of_ranges(ranges: list[dict[str, tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    """Blocks' ranges together: a parameter of one block keeps its range, one of several spans them all."""
    union: dict[str, tuple[float, float]] = {}
    for block in ranges:
        for name, (low, high) in block.items():
            union[name] = (min(low, union[name][0]), max(high, union[name][1])) if name in union else (low, high)
    return union


def priors_fragment(ranges: dict[str, tuple[float, float]], source: str) -> str:
    """The ranges as priors.yaml entries (shared ones, then per_trust by field), to copy into the next priors file."""
    shared = [f"  {name}: [{low:g}, {high:g}]" for name, (low, high) in ranges.items()
              if name.partition(".")[0] not in TRUST_NAMES]
    per_field: dict[str, list[str]] = {}
    for name, (low, high) in ranges.items():
        trust, _, field = name.partition(".")
        if trust in TRUST_NAMES:
            per_field.setdefault(field, []).append(f"    {trust}: [{low:g}, {high:g}]")
    lines = [f"# truncated priors from {source} (orgsim calibrate-truncate)"]
    if shared:
        lines += ["shared:", *shared]
    if per_field:
        lines += ["per_trust:"] + [line for field, entries in per_field.items() for line in (f"  {field}:", *entries)]
    return "\n".join(lines) + "\n"


def register(subparsers) -> None:
    from sim.argtypes import positive_float

    cmd = subparsers.add_parser("calibrate-truncate", help="a block's posterior as truncated priors for the next calibration",
                                description="Print, as priors.yaml entries, the range each free parameter of a block's "
                                            "posterior spans, widened (docs/calibration.md, 'Calibration in blocks').")
    cmd.add_argument("posteriors", type=Path, nargs="+",
                     help="the blocks' posteriors, e.g. calibration/census/posterior_census_*.csv")
    cmd.add_argument("--widen", type=positive_float, default=0.25,
                     help="widen the span by this share of it on each side (0.25)")
    cmd.set_defaults(handler=lambda args: _print_fragment(args.posteriors, args.widen))


def _print_fragment(paths: list[Path], widen: float) -> int:
    ranges = union_of_ranges([truncated_ranges(load_posterior(path), widen) for path in paths])
    print(priors_fragment(ranges, " ".join(str(path) for path in paths)), end="")
    return 0
