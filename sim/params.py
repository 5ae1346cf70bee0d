"""Behavioural parameters: the documented defaults in sim/parameters.yaml and user overrides.

A parameter file given by a user is a YAML or JSON mapping ``name: value`` (or ``name: {value: v}``),
naming only parameters that exist and giving values inside their allowed range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from sim.errors import InputError


PARAMETER_FILE = Path(__file__).with_name("parameters.yaml")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    value: float
    unit: str
    low: float
    high: float
    meaning: str
    reason: str


def _load_specs() -> dict[str, ParamSpec]:
    raw = yaml.safe_load(PARAMETER_FILE.read_text())
    return {
        name: ParamSpec(name, float(e["value"]), e["unit"], float(e["range"][0]),
                        float(e["range"][1]), e["meaning"], e["reason"])
        for name, e in raw.items()
    }


PARAMETERS: dict[str, ParamSpec] = _load_specs()


def default_params() -> dict[str, float]:
    return {name: spec.value for name, spec in PARAMETERS.items()}


def validate_params(values: dict, source: str = "parameters") -> dict[str, float]:
    """Defaults overridden by ``values``; InputError naming the source and field if invalid."""
    params = default_params()
    for name, value in values.items():
        if name not in PARAMETERS:
            raise InputError(f"{source}: unknown parameter '{name}'; allowed: {', '.join(sorted(PARAMETERS))}")
        if isinstance(value, dict) and "value" in value:
            value = value["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{source}: parameter '{name}' must be a number, got {value!r}")
        spec = PARAMETERS[name]
        if not spec.low <= float(value) <= spec.high:
            raise InputError(f"{source}: parameter '{name}' = {value} is outside its allowed range "
                             f"[{spec.low}, {spec.high}] ({spec.unit})")
        params[name] = float(value)
    return params


def load_params(path: str | Path) -> dict[str, float]:
    """Read a YAML/JSON parameter file; missing parameters keep their defaults."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read parameter file ({exc.strerror})") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
                         f"{str(exc).splitlines()[0]}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a parameter file must be a mapping of parameter names to numbers")
    return validate_params(raw, source=str(path))
