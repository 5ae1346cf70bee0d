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

import re
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


def narrower_than(ranges: dict[str, tuple[float, float]], base: dict[str, tuple[float, float]]) -> list[str]:
    """The parameters of ``ranges`` whose range is narrower than ``base``'s: a final population that still spans a
    parameter's whole prior (a defensive kernel's prior draws keep reaching its edges) truncates nothing."""
    return [name for name, (low, high) in ranges.items()
            if name in base and (low > base[name][0] + 1e-12 or high < base[name][1] - 1e-12)]


def union_of_ranges(ranges: list[dict[str, tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    """Blocks' ranges together: a parameter of one block keeps its range, one of several spans them all."""
    union: dict[str, tuple[float, float]] = {}
    for block in ranges:
        for name, (low, high) in block.items():
            union[name] = (min(low, union[name][0]), max(high, union[name][1])) if name in union else (low, high)
    return union


def _number(value: float) -> str:
    """A YAML float in plain decimals (YAML 1.1 reads '1e-05' as text)."""
    return f"{value:.10f}".rstrip("0").rstrip(".") or "0"


def priors_fragment(ranges: dict[str, tuple[float, float]], source: str) -> str:
    """The ranges as priors.yaml entries (shared ones, then per_trust by field), to copy into the next priors file."""
    shared = [f"  {name}: [{_number(low)}, {_number(high)}]" for name, (low, high) in ranges.items()
              if name.partition(".")[0] not in TRUST_NAMES]
    per_field: dict[str, list[str]] = {}
    for name, (low, high) in ranges.items():
        trust, _, field = name.partition(".")
        if trust in TRUST_NAMES:
            per_field.setdefault(field, []).append(f"    {trust}: [{_number(low)}, {_number(high)}]")
    lines = [f"# truncated priors from {source} (orgsim calibrate-truncate)"]
    if shared:
        lines += ["shared:", *shared]
    if per_field:
        lines += ["per_trust:"] + [line for field, entries in per_field.items() for line in (f"  {field}:", *entries)]
    return "\n".join(lines) + "\n"


_SHARED_ENTRY = re.compile(r"^(\s+)([A-Za-z_][\w]*):(\s*)\{(.*)\}(\s*(#.*)?)$")   # "  name: {low: 0, high: 1, why: ...}"
_TRUST_ENTRY = re.compile(r"^(\s+)([A-Z]+):(\s*)\[[^\]]*\](\s*(#.*)?)$")            # "    SASH:  [1.9, 4.9]"
_FIELD_LINE = re.compile(r"^  ([\w.\-]+):\s*(#.*)?$")                                # "  programme.l4l_cohorts_per_year:"


def truncate_priors_text(base_text: str, ranges: dict[str, tuple[float, float]], base_name: str) -> str:
    """The priors file ``base_text`` with every parameter of ``ranges`` drawn from its truncated range instead, its
    reasons and comments kept (a shared entry keeps its ``why``; a per-trust entry its field's). InputError names a
    parameter of ``ranges`` that the file does not free: a block can only truncate the next calibration's priors."""
    lines, section, field, done = base_text.splitlines(), None, None, set()
    for i, line in enumerate(lines):
        if line and not line[0].isspace() and not line.startswith("#"):
            section, field = line.split(":")[0].strip(), None
            continue
        if section == "shared" and (match := _SHARED_ENTRY.match(line)) and match[2] in ranges:
            low, high = ranges[match[2]]
            body = re.sub(r"\bhigh:\s*[^,}]+", f"high: {_number(high)}",
                          re.sub(r"\blow:\s*[^,}]+", f"low: {_number(low)}", match[4], count=1), count=1)
            lines[i] = f"{match[1]}{match[2]}:{match[3]}{{{body}}}{match[5]}"
            done.add(match[2])
        elif section == "per_trust" and (match := _FIELD_LINE.match(line)):
            field = match[1]
        elif section == "per_trust" and field and (match := _TRUST_ENTRY.match(line)) \
                and (name := f"{match[2]}.{field}") in ranges:
            low, high = ranges[name]
            lines[i] = f"{match[1]}{match[2]}:{match[3]}[{_number(low)}, {_number(high)}]{match[4]}"
            done.add(name)
    missing = sorted(set(ranges) - done)
    if missing:
        raise InputError(f"{base_name}: frees no parameter named {', '.join(missing)} (as 'name: {{low, high, ...}}' "
                         "under shared, or 'TRUST: [low, high]' under a per_trust field); a block's posterior truncates "
                         "only priors the next calibration frees")
    return "\n".join(lines) + "\n"


def register(subparsers) -> None:
    from sim.argtypes import positive_float

    cmd = subparsers.add_parser("calibrate-truncate", help="a block's posterior as truncated priors for the next calibration",
                                description="Print, as priors.yaml entries, the range each free parameter of a block's "
                                            "posterior spans, widened (docs/calibration.md, 'Calibration in blocks'); "
                                            "with --onto and --out, write the next calibration's priors file: BASE with "
                                            "those ranges.")
    cmd.add_argument("posteriors", type=Path, nargs="+",
                     help="the blocks' posteriors, e.g. calibration/census/posterior_census_*.csv")
    cmd.add_argument("--widen", type=positive_float, default=0.25,
                     help="widen the span by this share of it on each side (0.25)")
    cmd.add_argument("--onto", type=Path, metavar="BASE",
                     help="a priors file freeing every parameter of the blocks (e.g. calibration/next/priors.yaml): "
                          "write it with the truncated ranges to --out")
    cmd.add_argument("--out", type=Path, metavar="FILE", help="with --onto: the priors file to write")
    cmd.set_defaults(handler=_truncate)


def _truncate(args) -> int:
    if (args.onto is None) != (args.out is None):
        raise InputError("calibrate-truncate: give --onto BASE and --out FILE together (or neither, to print the ranges)")
    ranges = union_of_ranges([truncated_ranges(load_posterior(path), args.widen) for path in args.posteriors])
    source = " ".join(str(path) for path in args.posteriors)
    if args.onto is None:
        print(priors_fragment(ranges, source), end="")
        return 0
    from .priors import load_priors

    if args.out.resolve() == args.onto.resolve():
        raise InputError(f"--out: {args.out} is the base priors file; write the truncated priors to a new file")
    try:
        base_text = args.onto.read_text()
    except OSError as exc:
        raise InputError(f"--onto: cannot read {args.onto}: {exc.strerror}") from None
    base = {p.name: (p.low, p.high) for p in load_priors(args.onto).priors}   # an invalid base fails here, by name
    narrowed = narrower_than(ranges, base)
    header = (f"# Written by `orgsim calibrate-truncate {source} --widen {args.widen:g} --onto {args.onto} --out "
              f"{args.out}`:\n# {args.onto} with every parameter of those posteriors drawn from the range its final "
              f"population spans, widened by {args.widen:g} of that span on each side (docs/calibration.md, "
              f"'Calibration in blocks'): {len(narrowed)} of their {len(ranges)} parameters narrowed, the others "
              "still span their whole range.\n")
    text = header + truncate_priors_text(base_text, ranges, str(args.onto))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    draft = args.out.with_name(args.out.name + ".draft")
    draft.write_text(text)
    try:                                           # the file is the record: it must say what the ranges are
        written = {p.name: (p.low, p.high) for p in load_priors(draft).priors}
        wrong = [name for name, (low, high) in ranges.items() if not np.allclose(written[name], (low, high), rtol=1e-9)]
        if wrong:
            raise InputError(f"--out: {args.out} would not draw {', '.join(wrong)} from the truncated range; not written")
    except InputError:
        draft.unlink()
        raise
    draft.replace(args.out)
    print(f"calibrate-truncate: wrote {args.out}: {len(narrowed)} of the posteriors' {len(ranges)} parameters narrowed "
          f"from {args.onto}'s ranges" + (f" ({', '.join(narrowed)})" if 0 < len(narrowed) <= 10 else "")
          + (f"; {len(ranges) - len(narrowed)} still span their whole range" if len(narrowed) < len(ranges) else ""))
    return 0
