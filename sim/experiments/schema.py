"""The experiment file format (``experiments/*.yaml``), validated with pydantic.

An experiment says which scenarios run, which scenario factors and behavioural parameters vary and
how, the design, the replicates per point and which outputs to keep. See docs/experiments.md for
the full format with examples.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from sim.errors import InputError, InputModel, check_name, read_yaml, validation_message
from sim.experiments.outputs import check_output_names, is_numeric_output
from sim.params import PARAMETERS
from sim.scenario import load_scenario

SHIPPED_EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


class Strict(InputModel):
    """Unknown fields refused; true/false is not a number."""


class ParameterVariation(Strict):
    """How one behavioural parameter varies: a list of ``values`` or a range with a distribution.

    A range defaults to the parameter's documented range (sim/parameters.yaml).
    ``distribution`` is ``uniform`` (low..high), ``triangular`` (low..high, peak at ``mode``) or
    ``truncnorm`` (``mean``, ``sd``, truncated to low..high).
    """

    values: list[float] | None = None
    low: float | None = None
    high: float | None = None
    distribution: Literal["uniform", "triangular", "truncnorm"] = "uniform"
    mode: float | None = None
    mean: float | None = None
    sd: float | None = Field(default=None, gt=0)


class Design(Strict):
    """``samples``: Latin hypercube points, Sobol base samples N (a power of two) or Morris trajectories.

    ``levels``: Morris grid levels, or points per range in a full factorial.
    """

    kind: Literal["full_factorial", "latin_hypercube", "sobol", "morris"] = "full_factorial"
    samples: int | None = Field(default=None, ge=1)
    levels: int = Field(default=4, ge=2)
    second_order: bool = False
    seed: int = Field(default=0, ge=0, le=2**32 - 1)    # SALib seeds numpy's legacy generator


class Outputs(Strict):
    final: list[str] = Field(default_factory=lambda: ["quality_final", "cqc_latest_score"])
    series: list[str] = Field(default_factory=list)


class ContextLever(Strict):
    """A scenario input sampled with the design (latin_hypercube, sobol, morris): one value per design point.

    A number at ``path`` (a dotted scenario field, e.g. ``programme.rpiws_per_year``) over ``low``..``high``
    (``integer: true`` for whole numbers); one of ``choices`` at ``path``; or one of named ``levels``, each a
    set of scenario overrides as in scenario_factors (for an input that is not one field, e.g. a CEO timeline).
    The sampler draws a number in the lever's range; a choice or level is its equal share of that range.
    """

    path: str | None = None
    low: float | None = None
    high: float | None = None
    integer: bool = False
    choices: list[bool | int | float | str] | None = Field(default=None, min_length=2)
    levels: dict[str, dict] | None = Field(default=None, min_length=2)

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [kind for kind, given in (("low/high", self.low is not None or self.high is not None),
                                          ("choices", self.choices is not None), ("levels", self.levels is not None))
                 if given]
        if len(kinds) != 1:
            raise ValueError("give exactly one of low and high, choices or levels" +
                             (f" (got {' and '.join(kinds)})" if kinds else ""))
        if (self.path is None) != (self.levels is not None):
            raise ValueError("levels carry their own overrides (no path); low/high and choices need a path")
        if kinds == ["low/high"] and not (self.low is not None and self.high is not None and self.low < self.high):
            raise ValueError(f"a range needs low below high (got low={self.low}, high={self.high})")
        return self

    @property
    def options(self) -> list:
        return list(self.levels) if self.levels is not None else self.choices

    def bounds(self) -> list[float]:
        """The range the sampler draws from: the number's range (widened by half a step for whole numbers),
        or [0, k) for k choices or levels, read as equal shares."""
        if self.options is not None:
            return [0.0, float(len(self.options))]
        return [self.low - 0.5, self.high + 0.5] if self.integer else [self.low, self.high]

    def value(self, drawn: float):
        """The lever's value for a number drawn in ``bounds()``: a number, a choice or a level's name."""
        if self.options is not None:
            return self.options[min(int(drawn), len(self.options) - 1)]
        return int(min(max(round(drawn), self.low), self.high)) if self.integer else float(drawn)

    def overrides(self, value) -> dict:
        """The scenario overrides that set this lever to ``value``."""
        if self.levels is not None:
            return self.levels[value]
        nested = value
        for key in reversed(self.path.split(".")):
            nested = {key: nested}
        return nested


class PosteriorBase(Strict):
    """Parameters from a calibration posterior (a CSV or parquet file of weighted parameter sets, as ``orgsim compare
    --posterior`` reads): every parameter not varied is set at the posterior's weighted median (per-trust
    ``TRUST.field`` columns too, on every scenario built on that trust), and a varied parameter given without
    ``low``/``high`` spans the posterior's weighted quantiles ``range`` (its documented range if the posterior does
    not vary it). A relative ``file`` is read from the current folder, else from the repository."""

    file: str
    range: tuple[float, float] = (0.05, 0.95)

    @model_validator(mode="after")
    def _quantiles(self):
        low, high = self.range
        if not 0 <= low < high <= 1:
            raise ValueError(f"range must be two quantiles 0 <= low < high <= 1 (got {list(self.range)})")
        return self


class Experiment(Strict):
    name: str
    description: str = ""
    scenarios: list[str] = Field(min_length=1)
    scenario_factors: dict[str, dict[str, dict]] = Field(default_factory=dict)
    context: dict[str, ContextLever] = Field(default_factory=dict)
    parameters: dict[str, ParameterVariation] | Literal["all"] = Field(default_factory=dict)
    design: Design = Field(default_factory=Design)
    replicates: int = Field(default=1, ge=1)
    seed: int = Field(default=20150701, ge=0)
    common_random_numbers: bool = True
    scale: float = Field(default=1.0, gt=0, le=1)
    end: dt.date | None = None
    outputs: Outputs = Field(default_factory=Outputs)
    posterior: PosteriorBase | None = None
    gaps: list[tuple[str, str]] = Field(default_factory=list)   # [A, B]: also analyse A - B, run for run

    @field_validator("name")
    @classmethod
    def _name_fits_in_a_folder_name(cls, name: str) -> str:
        return check_name(name)   # the default results folder is results/<name>

    @model_validator(mode="after")
    def _factor_levels_not_empty(self):
        for factor, levels in self.scenario_factors.items():
            if not levels:
                raise ValueError(f"scenario_factors.{factor} has no levels")
        return self


def resolve_experiment_path(name_or_path: str) -> Path:
    """A path to a .yaml file, or a name looked up in ./experiments then the shipped experiments/."""
    path = Path(name_or_path)
    candidates = [path] if path.suffix in (".yaml", ".yml") else [
        Path.cwd() / "experiments" / f"{name_or_path}.yaml", SHIPPED_EXPERIMENTS / f"{name_or_path}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    shipped = sorted(p.stem for p in SHIPPED_EXPERIMENTS.glob("*.yaml"))
    raise InputError(f"experiment {name_or_path!r} not found (looked for {', '.join(map(str, candidates))}); "
                     f"shipped experiments: {', '.join(shipped) or 'none'}")


def load_experiment(name_or_path: str) -> Experiment:
    """Read and validate an experiment file; every problem is an InputError naming the file and field."""
    path = resolve_experiment_path(name_or_path)
    data = read_yaml(path, "experiment")
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of experiment fields at the top level")
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as error:
        raise InputError(f"{path}: {validation_message(error)}") from None
    experiment = with_posterior_ranges(experiment, str(path))
    check_experiment(experiment, str(path))
    return experiment


def posterior_path(posterior: PosteriorBase) -> Path:
    path = Path(posterior.file)
    if not path.is_absolute() and not path.exists():
        path = SHIPPED_EXPERIMENTS.parent / path
    return path


def posterior_sets(experiment: Experiment, where: str = "experiment"):
    """The posterior's parameter sets (every parameter, TRUST.field columns and ``weight``), or None."""
    if experiment.posterior is None:
        return None
    from sim.experiments.compare import load_parameter_sets

    path = posterior_path(experiment.posterior)
    if not path.is_file():
        raise InputError(f"{where}: posterior.file: {experiment.posterior.file} not found (looked in the current "
                         f"folder and {SHIPPED_EXPERIMENTS.parent})")
    return load_parameter_sets(str(path))


def posterior_medians(experiment: Experiment) -> dict[str, float]:
    """The posterior's weighted median of every column (parameters and TRUST.field), or {} without a posterior."""
    from sim.experiments.compare import weighted_quantile

    sets = posterior_sets(experiment)
    if sets is None:
        return {}
    weights = sets["weight"].to_numpy(dtype=float)
    return {column: weighted_quantile(sets[column].to_numpy(dtype=float), weights, 0.5)
            for column in sets.columns if column != "weight"}


def with_posterior_ranges(experiment: Experiment, where: str) -> Experiment:
    """The experiment with every varied range left open (no low/high, no values) set to the posterior's quantiles."""
    sets = posterior_sets(experiment, where)
    if sets is None:
        return experiment
    from sim.experiments.compare import weighted_quantile

    weights = sets["weight"].to_numpy(dtype=float)
    variations = dict(parameter_variations(experiment))
    for name, variation in variations.items():
        if variation.values is not None or variation.low is not None or variation.high is not None:
            continue
        if name in sets and sets[name].nunique() > 1:
            values = sets[name].to_numpy(dtype=float)
            low, high = (weighted_quantile(values, weights, q) for q in experiment.posterior.range)
            variations[name] = variation.model_copy(update={"low": low, "high": high})
    return experiment.model_copy(update={"parameters": variations})


def check_experiment(experiment: Experiment, where: str) -> None:
    """Checks that need the model's parameter table: names, ranges and the design's requirements."""
    variations = parameter_variations(experiment)
    unknown = [name for name in variations if name not in PARAMETERS]
    if unknown:
        raise InputError(
            f"{where}: unknown parameter(s) {', '.join(unknown)} in parameters; "
            f"allowed: {', '.join(sorted(PARAMETERS))}"
        )
    for name, variation in variations.items():
        _check_variation(name, variation, experiment.design.kind, where)
    check_output_names(experiment.outputs.final, experiment.outputs.series, where)
    _check_context(experiment, where)
    _check_design(experiment, variations, where)
    _check_cases(experiment, where)
    _check_gaps(experiment, where)


def _check_gaps(experiment: Experiment, where: str) -> None:
    from sim.experiments.designs import experiment_cases

    labels = [case.label for case in experiment_cases(experiment)]
    for number, (first, second) in enumerate(experiment.gaps):
        unknown = [label for label in (first, second) if label not in labels]
        if unknown or first == second:
            raise InputError(f"{where}: gaps[{number}]: {first} - {second}: "
                             + (f"{', '.join(unknown)} is not a case of this experiment; cases: {', '.join(labels)}"
                                if unknown else "give two different cases"))


def _check_cases(experiment: Experiment, where: str) -> None:
    """Every scenario with every factor level must be valid, and the end inside its run; errors in a
    level name this file and the level's field, not the scenario file it overrides."""
    from sim.experiments.designs import experiment_cases
    from sim.scenario import check_run_end, load_scenario

    for scenario in experiment.scenarios:
        load_scenario(scenario)
        for factor, levels in experiment.scenario_factors.items():
            for level, overrides in levels.items():
                load_scenario(scenario, overrides, source=where, field_prefix=f"scenario_factors.{factor}.{level}")
    for case in experiment_cases(experiment):
        levels = ", ".join(f"{factor}={level}" for factor, level in case.levels.items())
        loaded = load_scenario(case.scenario, case.overrides, source=where,
                               field_prefix=f"scenario_factors ({levels})" if levels else "")
        check_run_end(loaded, experiment.end, f"{where}: field 'end'")


def parameter_variations(experiment: Experiment) -> dict[str, ParameterVariation]:
    if experiment.parameters == "all":
        return {name: ParameterVariation() for name in PARAMETERS}
    return experiment.parameters


def parameter_bounds(name: str, variation: ParameterVariation) -> tuple[float, float]:
    spec = PARAMETERS[name]
    low = spec.low if variation.low is None else variation.low
    high = spec.high if variation.high is None else variation.high
    return float(low), float(high)


def _check_variation(name: str, variation: ParameterVariation, kind: str, where: str) -> None:
    field = f"parameters.{name}"
    spec = PARAMETERS[name]
    if variation.values is not None:
        if kind != "full_factorial":
            raise InputError(f"{where}: {field}: 'values' is for full_factorial designs; give low/high for {kind}")
        if not variation.values:
            raise InputError(f"{where}: {field}: empty list of values")
        outside = [v for v in variation.values if not spec.low <= v <= spec.high]
        if outside:
            raise InputError(
                f"{where}: {field}: value(s) {outside} outside the allowed range [{spec.low}, {spec.high}]"
            )
        return
    low, high = parameter_bounds(name, variation)
    if not low < high:
        raise InputError(f"{where}: {field}: empty range (low={low}, high={high}); low must be below high")
    if low < spec.low or high > spec.high:
        raise InputError(
            f"{where}: {field}: range [{low}, {high}] goes outside the allowed range [{spec.low}, {spec.high}]"
        )
    if variation.distribution == "triangular" and not (variation.mode is not None and low <= variation.mode <= high):
        raise InputError(f"{where}: {field}: a triangular distribution needs a mode between low and high")
    if variation.distribution == "truncnorm" and (variation.mean is None or variation.sd is None):
        raise InputError(f"{where}: {field}: a truncnorm distribution needs mean and sd")
    if variation.distribution == "truncnorm" and not low <= variation.mean <= high:
        raise InputError(f"{where}: {field}.mean: {variation.mean} lies outside the range [{low}, {high}]; "
                         "give a mean between low and high")
    if variation.distribution != "uniform" and kind in ("morris", "full_factorial"):
        raise InputError(f"{where}: {field}: {kind} designs use uniform ranges; distribution must be uniform")


def _check_context(experiment: Experiment, where: str) -> None:
    """Levers need a sampled design and names of their own; each lever's extreme values must give a valid
    scenario (checked on every scenario of the experiment, before any run: an unknown path is an unknown field)."""
    if not experiment.context:
        return
    if experiment.design.kind == "full_factorial":
        raise InputError(f"{where}: context: levers are sampled by latin_hypercube, sobol or morris designs; "
                         "for a full factorial use scenario_factors")
    for name, lever in experiment.context.items():
        field = f"context.{name}"
        if name in parameter_variations(experiment):
            raise InputError(f"{where}: {field}: {name} is also a varied parameter; give the lever another name")
        # the ends of a range, and a value between them that is not whole (a float at an integer field fails)
        extremes = lever.options if lever.options is not None else [
            lever.low, lever.high, *([] if lever.integer else [lever.low + 0.37 * (lever.high - lever.low)])]
        for scenario in experiment.scenarios:
            for value in extremes:
                try:
                    load_scenario(scenario, lever.overrides(value))
                except InputError as error:
                    raise InputError(f"{where}: {field} = {value!r} on scenario {scenario}: {error}") from None


def _check_design(experiment: Experiment, variations: dict, where: str) -> None:
    design = experiment.design
    if design.kind == "full_factorial":
        return
    if not variations and not experiment.context:
        raise InputError(f"{where}: design.kind {design.kind} needs at least one parameter in parameters "
                         "(or a lever in context)")
    if design.samples is None:
        raise InputError(f"{where}: design.samples is required for design.kind {design.kind}")
    if design.kind == "sobol" and design.samples & (design.samples - 1):
        raise InputError(
            f"{where}: design.samples = {design.samples}: a Sobol design needs N a power of two "
            f"(e.g. {1 << (design.samples.bit_length() - 1)} or {1 << design.samples.bit_length()})"
        )
    if design.kind == "morris" and design.samples < 2:
        raise InputError(f"{where}: design.samples: a Morris design needs at least 2 trajectories")
    if design.kind in ("sobol", "morris") and len(variations) + len(experiment.context) < 2:
        raise InputError(f"{where}: parameters: a {design.kind} analysis needs at least two parameters (or levers)")
    if design.kind in ("sobol", "morris"):
        ratings = [name for name in experiment.outputs.final if not is_numeric_output(name)]
        if ratings:
            raise InputError(f"{where}: outputs.final: {', '.join(ratings)} are ratings (text); a {design.kind} "
                             "analysis needs numbers (use cqc_latest_score)")
