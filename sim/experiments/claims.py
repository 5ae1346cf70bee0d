"""The claims file (``experiments/claims.yaml``): the evaluation's causal claims as checks, validated with pydantic.

Each claim names the evidence it comes from and which runs it compares. Four kinds:

- ``effect``: a ``variant`` of a ``base`` scenario moves the ``outcome`` in the ``expected``
  direction. Passes if the interval of the mean paired difference (variant - base) excludes zero
  on that side.
- ``smaller_effect``: the ``variant``'s effect on the outcome is smaller in size than the
  ``reference`` variant's effect in its ``expected`` direction. Per pair the statistic is
  |variant - base| - (reference - base) (sign flipped for ``expected: lower``); passes if its
  interval lies below zero.
- ``pattern``: a summary ``key`` takes the published value in each scenario of
  ``expected_values``; passes where the share of runs that reproduce it is at least ``threshold``.
- ``gap_share``: the share of the ``high`` - ``low`` gap in the outcome that the parameter
  override ``switched_off`` closes, 1 - mean(gap with it) / mean(gap without it), paired per
  (parameter set, replicate); passes if at least ``threshold``.

A variant is a scenario (name or path), a parameter override mapping, or both; without a
scenario it is the claim's base with the override. An outcome is a numeric summary output
(``quality_final``, ``cqc_latest_score``, ...) or ``{key: cqc_latest, equals: inadequate}``: the
share of runs in which the key has that value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim.errors import InputError, read_yaml
from sim.experiments.outputs import is_numeric_output
from sim.experiments.schema import SHIPPED_EXPERIMENTS
from sim.params import validate_params
from sim.scenario import load_scenario

SHIPPED_CLAIMS = SHIPPED_EXPERIMENTS / "claims.yaml"
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Indicator(Strict):
    """1 in a run whose summary ``key`` equals ``equals``, else 0: its mean is a share of runs."""

    key: str = Field(min_length=1)
    equals: str | int | float | bool

    def label(self) -> str:
        return f"{self.key}={self.equals}"


def _numeric(outcome):
    if isinstance(outcome, str) and not is_numeric_output(outcome):
        raise ValueError(f"{outcome} is a rating (text); use cqc_latest_score, or a share of runs such as "
                         f"{{key: {outcome}, equals: inadequate}}")
    return outcome


Outcome = Annotated[str | Indicator, AfterValidator(_numeric)]


def outcome_label(outcome: Outcome) -> str:
    return outcome if isinstance(outcome, str) else outcome.label()


class Variant(Strict):
    scenario: str | None = Field(None, description="scenario name or path (default: the claim's base)")
    params: dict[str, float] = Field(default_factory=dict, description="behavioural parameters overridden")

    @model_validator(mode="after")
    def _not_empty(self):
        if self.scenario is None and not self.params:
            raise ValueError("give a scenario, a params mapping, or both")
        return self


class ClaimBase(Strict):
    name: str = Field(description="short identifier, used in tables and figures")
    evidence: str = Field(min_length=1, description="the finding of the evaluation the claim comes from")
    level: float = Field(0.90, gt=0, lt=1, description="coverage of the interval")

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str) -> str:
        if not NAME.match(name):
            raise ValueError(f"'{name}' is not allowed; use letters, digits, '_', '.', '-'")
        return name


class EffectClaim(ClaimBase):
    kind: Literal["effect"]
    base: str
    variant: Variant
    outcome: Outcome = "quality_final"
    expected: Literal["higher", "lower"]


class SmallerEffectClaim(ClaimBase):
    kind: Literal["smaller_effect"]
    base: str
    variant: Variant = Field(description="the variant whose effect should be the smaller in size")
    reference: Variant = Field(description="the variant whose effect in the expected direction should be larger")
    outcome: Outcome = "quality_final"
    expected: Literal["higher", "lower"] = Field(description="direction of the reference's effect")


class PatternClaim(ClaimBase):
    kind: Literal["pattern"]
    key: str = Field(min_length=1, description="summary key holding the simulated choice")
    expected_values: dict[str, str | int | float | bool] = Field(min_length=1, description="scenario -> published value")
    threshold: float = Field(gt=0, le=1, description="least share of runs that must reproduce the value")


class GapShareClaim(ClaimBase):
    kind: Literal["gap_share"]
    high: str = Field(description="scenario with the higher outcome")
    low: str = Field(description="scenario with the lower outcome")
    switched_off: dict[str, float] = Field(min_length=1, description="parameter override that switches the mechanisms off")
    outcome: Annotated[str, AfterValidator(_numeric)] = "quality_final"
    threshold: float = Field(gt=0, le=1, description="least share of the gap the override must close")


Claim = Annotated[Union[EffectClaim, SmallerEffectClaim, PatternClaim, GapShareClaim], Field(discriminator="kind")]


class ClaimsFile(Strict):
    description: str = ""
    claims: list[Claim] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self):
        names = [claim.name for claim in self.claims]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"claim names must be unique; repeated: {', '.join(repeated)}")
        return self


@dataclass(frozen=True)
class Arm:
    """One set of runs: a scenario, possibly with behavioural parameters overridden."""

    scenario: str
    params: tuple[tuple[str, float], ...] = ()

    @classmethod
    def of(cls, scenario: str, params: dict[str, float] | None = None) -> "Arm":
        return cls(scenario, tuple(sorted((params or {}).items())))

    def label(self) -> str:
        return self.scenario + "".join(f" {name}={value:g}" for name, value in self.params)


def arms(claim) -> dict[str, Arm]:
    """The arms a claim compares, by role (``base``, ``variant``, ``reference``, a trust, ...)."""
    if isinstance(claim, (EffectClaim, SmallerEffectClaim)):
        roles = {"base": Arm.of(claim.base), "variant": _variant_arm(claim.base, claim.variant)}
        if isinstance(claim, SmallerEffectClaim):
            roles["reference"] = _variant_arm(claim.base, claim.reference)
        return roles
    if isinstance(claim, PatternClaim):
        return {scenario: Arm.of(scenario) for scenario in claim.expected_values}
    return {"high": Arm.of(claim.high), "low": Arm.of(claim.low),
            "high_off": Arm.of(claim.high, claim.switched_off), "low_off": Arm.of(claim.low, claim.switched_off)}


def _variant_arm(base: str, variant: Variant) -> Arm:
    return Arm.of(variant.scenario or base, variant.params)


def load_claims(path: str | Path | None = None) -> ClaimsFile:
    """Read and validate a claims file (default: the shipped experiments/claims.yaml).

    Every problem is an InputError naming the file, the claim and the field: the schema, then
    each scenario (it must load) and each parameter override (names and ranges of sim/parameters.yaml).
    """
    path = Path(path) if path is not None else SHIPPED_CLAIMS
    if not path.is_file():
        raise InputError(f"{path}: claims file not found")
    data = read_yaml(path, "claims")
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping with a 'claims' list at the top level")
    try:
        claims = ClaimsFile.model_validate(data)
    except ValidationError as error:
        raise InputError(f"{path}: {_message(error, data)}") from None
    for number, claim in enumerate(claims.claims):
        _check_inputs(claim, f"{path}: claims[{number}] ({claim.name})")
    return claims


def _check_inputs(claim, where: str) -> None:
    for field, scenario in _scenario_fields(claim):
        try:
            load_scenario(scenario)
        except InputError as error:
            raise InputError(f"{where}: field '{field}': {error}") from None
    for field, params in _parameter_fields(claim):
        validate_params(params, source=f"{where}: field '{field}'")


def _scenario_fields(claim) -> list[tuple[str, str]]:
    if isinstance(claim, PatternClaim):
        return [(f"expected_values.{name}", name) for name in claim.expected_values]
    if isinstance(claim, GapShareClaim):
        return [("high", claim.high), ("low", claim.low)]
    fields = [("base", claim.base), ("variant.scenario", claim.variant.scenario)]
    if isinstance(claim, SmallerEffectClaim):
        fields.append(("reference.scenario", claim.reference.scenario))
    return [(field, name) for field, name in fields if name is not None]


def _parameter_fields(claim) -> list[tuple[str, dict]]:
    if isinstance(claim, GapShareClaim):
        return [("switched_off", claim.switched_off)]
    if isinstance(claim, PatternClaim):
        return []
    fields = [("variant.params", claim.variant.params)]
    if isinstance(claim, SmallerEffectClaim):
        fields.append(("reference.params", claim.reference.params))
    return [(field, params) for field, params in fields if params]


def _message(error: ValidationError, data: dict) -> str:
    """One line per problem: ``claims[i] (name): field 'a.b': what is allowed`` (the kind tag dropped)."""
    raw_claims = data.get("claims") if isinstance(data.get("claims"), list) else []
    problems = []
    for item in error.errors():
        location = list(item["loc"])
        where = ""
        if len(location) >= 2 and location[0] == "claims" and isinstance(location[1], int):
            number = location[1]
            raw = raw_claims[number] if number < len(raw_claims) and isinstance(raw_claims[number], dict) else {}
            where = f"claims[{number}]" + (f" ({raw['name']})" if isinstance(raw.get("name"), str) else "") + ": "
            location = location[2:]
            if location and location[0] == raw.get("kind"):
                location = location[1:]  # pydantic puts the union's tag in the path
        field = ".".join(str(part) for part in location) or "(the claim)"
        if item["type"] == "union_tag_invalid":
            message = "'kind' must be one of effect, smaller_effect, pattern, gap_share"
        elif item["type"] == "union_tag_not_found":
            message = "missing 'kind' (effect, smaller_effect, pattern or gap_share)"
        elif item["type"] == "extra_forbidden":
            message = "unknown field"
        else:
            message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{where}field '{field}': {message}")
    return "; ".join(problems)
