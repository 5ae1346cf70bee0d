"""Behavioural parameters: the documented defaults in sim/parameters.yaml and user overrides.

A parameter file given by a user is a YAML or JSON mapping ``name: value`` (or ``name: {value: v}``,
as in sim/parameters.yaml), naming only parameters that exist, each once, and giving values inside
their allowed range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sim.errors import InputError, read_yaml


PARAMETER_FILE = Path(__file__).with_name("parameters.yaml")
ENTRY_KEYS = ("value", "unit", "range", "meaning", "reason")   # an entry of sim/parameters.yaml


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
    raw = read_yaml(PARAMETER_FILE, "parameter")
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
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(ENTRY_KEYS))
            if unknown or "value" not in value:
                raise InputError(f"{source}: parameter '{name}': " + (
                    f"unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(ENTRY_KEYS)}" if unknown
                    else "a mapping needs 'value'"))
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
    raw = _read_json(path) if path.suffix == ".json" else read_yaml(path, "parameter")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a parameter file must be a mapping of parameter names to numbers")
    return validate_params(raw, source=str(path))


def _read_json(path: Path):
    try:
        return json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=_unique_keys)
    except OSError as exc:
        raise InputError(f"{path}: cannot read parameter file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: the parameter file is not UTF-8 text; save it as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    except ValueError as exc:   # a duplicate key
        raise InputError(f"{path}: {exc}") from None


def _unique_keys(pairs: list[tuple]) -> dict:
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise ValueError(f"duplicate key(s) {', '.join(twice)}; give each key once")
    return dict(pairs)
