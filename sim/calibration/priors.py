"""Priors of the calibration (calibration/priors.yaml): which parameters are free and over what range.

Two kinds of free parameter:
  shared     behavioural parameters of sim/parameters.yaml, one value for all trusts; the prior range
             must lie inside the parameter's allowed range.
  per_trust  unpublished programme decisions of a trust, a dotted scenario field such as
             ``programme.l4l_cohorts_per_year``, applied as a scenario override; both ends of the
             range must give a valid scenario.

Every prior is uniform on [low, high] (``log: true`` makes it uniform in the logarithm).
A particle is a flat mapping: shared names as they are, per-trust ones as ``TRUST.field.path``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


from sim.errors import InputError, read_yaml
from sim.params import PARAMETERS, default_params
from sim.scenario import load_scenario

from .targets import REPO_ROOT, TRUST_NAMES

DEFAULT_PRIORS = REPO_ROOT / "calibration" / "priors.yaml"


@dataclass(frozen=True)
class Prior:
    name: str          # particle key: parameter name, or TRUST.field.path
    low: float
    high: float
    log: bool
    why: str
    trust: str | None = None   # None for shared parameters
    field: str | None = None   # dotted scenario field for per-trust priors

    def to_unit(self, value: float) -> float:
        """Position of ``value`` in the prior range, 0..1 (used to compare posterior and prior widths)."""
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)


@dataclass(frozen=True)
class PriorSet:
    priors: tuple[Prior, ...]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.priors]

    def shared(self) -> list[Prior]:
        return [p for p in self.priors if p.trust is None]

    def for_trusts(self, trusts) -> PriorSet:
        """Shared priors and the per-trust priors of ``trusts`` only (a left-out trust has no data)."""
        return PriorSet(tuple(p for p in self.priors if p.trust is None or p.trust in trusts))

    def to_pyabc(self):
        import pyabc

        rvs = {}
        for p in self.priors:
            if p.log:
                rvs[p.name] = pyabc.RV("loguniform", p.low, p.high)
            else:
                rvs[p.name] = pyabc.RV("uniform", p.low, p.high - p.low)
        return pyabc.Distribution(**rvs)


def _fail(path: Path, field: str, message: str):
    raise InputError(f"{path}: field '{field}': {message}")


def _range(path: Path, field: str, entry) -> tuple[float, float, bool, str]:
    if isinstance(entry, list):
        entry = {"low": entry[0], "high": entry[1]} if len(entry) == 2 else {}
    if not isinstance(entry, dict):
        _fail(path, field, "must be a mapping {low, high, why} or a list [low, high]")
    unknown = set(entry) - {"low", "high", "log", "why"}
    if unknown:
        _fail(path, field, f"unknown key(s) {', '.join(sorted(unknown))}; allowed: low, high, log, why")
    low, high = entry.get("low"), entry.get("high")
    for key, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            _fail(path, f"{field}.{key}", f"must be a finite number, got {value!r}")
    if not low < high:
        _fail(path, field, f"low ({low}) must be below high ({high})")
    log = entry.get("log", False)
    if not isinstance(log, bool) or (log and low <= 0):
        _fail(path, f"{field}.log", "must be true or false, and a log prior needs low > 0")
    return float(low), float(high), log, str(entry.get("why", ""))


def _shared_priors(path: Path, raw: dict) -> list[Prior]:
    priors = []
    for name, entry in raw.items():
        field = f"shared.{name}"
        if name not in PARAMETERS:
            _fail(path, field, f"unknown parameter; allowed: {', '.join(sorted(PARAMETERS))}")
        low, high, log, why = _range(path, field, entry)
        spec = PARAMETERS[name]
        if low < spec.low or high > spec.high:
            _fail(path, field, f"prior range [{low}, {high}] lies outside the parameter's allowed range "
                               f"[{spec.low}, {spec.high}] ({spec.unit})")
        priors.append(Prior(name, low, high, log, why))
    return priors


def _nested(dotted: str, value: float) -> dict:
    out: dict = value
    for key in reversed(dotted.split(".")):
        out = {key: out}
    return out


def _per_trust_priors(path: Path, raw: dict) -> list[Prior]:
    priors = []
    for field_path, entry in raw.items():
        if not isinstance(entry, dict):
            _fail(path, f"per_trust.{field_path}", "must map trust names to ranges (and may hold 'why')")
        why = str(entry.get("why", ""))
        for trust, rng in entry.items():
            if trust == "why":
                continue
            field = f"per_trust.{field_path}.{trust}"
            if trust not in TRUST_NAMES:
                _fail(path, field, f"unknown trust; allowed: {', '.join(TRUST_NAMES)}")
            low, high, log, own_why = _range(path, field, rng)
            for value in (low, high):
                try:
                    load_scenario(trust, overrides=_nested(field_path, value))
                except InputError as exc:
                    _fail(path, field, f"value {value} does not give a valid scenario: {exc}")
            priors.append(Prior(f"{trust}.{field_path}", low, high, log, own_why or why, trust, field_path))
    return priors


def load_priors(path: str | Path = DEFAULT_PRIORS) -> PriorSet:
    """Read and validate a priors file; InputError names the file, the field and what is allowed."""
    path = Path(path)
    raw = read_yaml(path, "priors")
    if not isinstance(raw, dict) or not set(raw) <= {"shared", "per_trust"}:
        raise InputError(f"{path}: a priors file is a mapping with 'shared' and optionally 'per_trust'")
    shared, per_trust = raw.get("shared") or {}, raw.get("per_trust") or {}
    if not isinstance(shared, dict) or not isinstance(per_trust, dict):
        raise InputError(f"{path}: 'shared' and 'per_trust' must be mappings")
    priors = _shared_priors(path, shared) + _per_trust_priors(path, per_trust)
    if not priors:
        raise InputError(f"{path}: no free parameter: give at least one prior under 'shared' or 'per_trust'")
    return PriorSet(tuple(priors))


def split_particle(particle: dict, trusts, fixed: dict[str, float] | None = None):
    """A particle (or posterior row) as (behavioural parameters, per-trust scenario overrides).

    Parameters not in the particle keep ``fixed`` (default: sim/parameters.yaml defaults). Keys of
    the form ``TRUST.field.path`` become overrides of that trust's scenario.
    """
    params = dict(fixed if fixed is not None else default_params())
    overrides: dict[str, dict] = {trust: {} for trust in trusts}
    for key, value in particle.items():
        trust, _, field_path = key.partition(".")
        if field_path and trust in TRUST_NAMES:
            if trust in overrides:
                _merge_into(overrides[trust], _nested(field_path, float(value)))
        elif key in PARAMETERS:
            params[key] = float(value)
    return params, overrides


def _merge_into(target: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict):
            _merge_into(target.setdefault(key, {}), value)
        else:
            target[key] = value
