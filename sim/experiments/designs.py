"""Sample points of an experiment's design and the run specs that evaluate them.

Points come from SALib (Latin hypercube, Sobol/Saltelli, Morris) or a full factorial product.
Runs are ordered case-major (scenario x scenario-factor levels), then point, then replicate, and
numbered 0..n-1 (the run index). With common random numbers replicate r uses seed index r at every
point and case, so differences between points are not blurred by different random streams.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.experiments.batch import RunSpec
from sim.experiments.schema import (Experiment, ParameterVariation, parameter_bounds, parameter_variations,
                                   posterior_medians)
from sim.calibration.priors import split_particle
from sim.experiments.compare import changes_from_base, root_trust
from sim.scenario import deep_merge


@dataclass(frozen=True)
class Case:
    """One scenario with one level of every scenario factor."""

    scenario: str
    levels: dict[str, str]
    overrides: dict

    @property
    def label(self) -> str:
        return "/".join([self.scenario, *(f"{factor}={level}" for factor, level in self.levels.items())])


def salib_problem(experiment: Experiment) -> dict:
    """The varied parameters, then the context levers (each drawn uniformly over ``ContextLever.bounds``)."""
    variations = parameter_variations(experiment)
    names = list(variations)
    bounds = [_salib_bounds(name, variations[name]) for name in names]
    dists = [_SALIB_DISTS[variations[name].distribution] for name in names]
    for name, lever in experiment.context.items():
        names.append(name)
        bounds.append(lever.bounds())
        dists.append("unif")
    return {"num_vars": len(names), "names": names, "bounds": bounds, "dists": dists}


_SALIB_DISTS = {"uniform": "unif", "triangular": "triang", "truncnorm": "truncnorm"}


def _salib_bounds(name: str, variation: ParameterVariation) -> list[float]:
    low, high = parameter_bounds(name, variation)
    if variation.distribution == "triangular":
        return [low, high, (variation.mode - low) / (high - low)]
    if variation.distribution == "truncnorm":
        return [low, high, variation.mean, variation.sd]
    return [low, high]


def sample_points(experiment: Experiment) -> pd.DataFrame:
    """One row per design point, one column per varied behavioural parameter and per context lever (the number
    drawn; ``ContextLever.value`` reads it as the lever's value)."""
    design = experiment.design
    if design.kind == "full_factorial":
        return _factorial_points(experiment)
    from SALib.sample import latin, morris, sobol     # with scipy.stats: seconds that other commands need not pay

    problem = salib_problem(experiment)
    if design.kind == "latin_hypercube":
        matrix = latin.sample(problem, design.samples, seed=design.seed)
    elif design.kind == "sobol":
        matrix = sobol.sample(problem, design.samples, calc_second_order=design.second_order, seed=design.seed)
    else:
        matrix = morris.sample(problem, design.samples, num_levels=design.levels, seed=design.seed)
    return pd.DataFrame(matrix, columns=problem["names"])


def _factorial_points(experiment: Experiment) -> pd.DataFrame:
    variations = parameter_variations(experiment)
    axes = {name: _factorial_values(name, variation, experiment.design.levels) for name, variation in variations.items()}
    rows = list(itertools.product(*axes.values()))
    return pd.DataFrame(rows, columns=list(axes)) if axes else pd.DataFrame(index=[0])


def _factorial_values(name: str, variation: ParameterVariation, levels: int) -> list[float]:
    if variation.values is not None:
        return [float(value) for value in variation.values]
    low, high = parameter_bounds(name, variation)
    return [float(value) for value in np.linspace(low, high, levels)]


def experiment_cases(experiment: Experiment) -> list[Case]:
    factors = experiment.scenario_factors
    cases = []
    for scenario in experiment.scenarios:
        for combination in itertools.product(*(levels.items() for levels in factors.values())):
            levels = {factor: level for factor, (level, _) in zip(factors, combination)}
            overrides = {}
            for _, level_overrides in combination:
                overrides = deep_merge(overrides, level_overrides)
            cases.append(Case(scenario, levels, overrides))
    return cases


def count_runs(experiment: Experiment) -> int:
    return len(experiment_cases(experiment)) * len(sample_points(experiment)) * experiment.replicates


def base_parameters(experiment: Experiment) -> tuple[dict[str, float], dict[str, dict]]:
    """The values of the parameters not varied (the defaults, or the posterior's weighted medians with
    ``posterior:``) and the per-trust scenario overrides of the posterior's medians (``{trust: overrides}``)."""
    trusts = sorted({root_trust(scenario) for scenario in experiment.scenarios})
    return split_particle(posterior_medians(experiment), trusts)


def _trust_base(scenario: str, trust_overrides: dict[str, dict]) -> dict:
    """A scenario's per-trust posterior overrides, with the scenario's own changes to its trust on top (as in
    ``orgsim compare``: a what-if's own pace stays its own)."""
    base = trust_overrides.get(root_trust(scenario))
    return deep_merge(base, changes_from_base(scenario)) if base else {}


def experiment_specs(experiment: Experiment, sizes: list[int] | None = None) -> list[RunSpec]:
    """The runs of the design, numbered case-major (case, then point, then replicate).

    ``sizes`` (an adaptive Sobol analysis: N0 < N1 < ... = ``design.samples``) numbers them round by round instead:
    first exactly the runs of the N0 design alone, then for each larger N the runs of its new points (case-major
    within the round). A Saltelli sample of N base samples is the first rows of the one of 2N (same scramble seed),
    so the runs of a smaller design are a prefix of a larger one's and its results folder extends.
    """
    points = sample_points(experiment).to_dict("records")
    per_sample = len(points) // experiment.design.samples if sizes else len(points)
    ends = [size * per_sample for size in sizes] if sizes else [len(points)]
    defaults, trust_overrides = base_parameters(experiment)
    cases = experiment_cases(experiment)
    bases = [_trust_base(case.scenario, trust_overrides) for case in cases]
    specs = []
    for start, end in zip([0, *ends[:-1]], ends):
        for case_index, (case, case_base) in enumerate(zip(cases, bases)):
            for point_index in range(start, end):
                point = dict(points[point_index])
                levers = {name: lever.value(point.pop(name)) for name, lever in experiment.context.items()}
                params = {**defaults, **point}
                overrides = deep_merge(case_base, case.overrides) if case_base else case.overrides
                for name, value in levers.items():
                    overrides = deep_merge(overrides, experiment.context[name].overrides(value))
                for replicate in range(experiment.replicates):
                    run_index = len(specs)
                    specs.append(
                        RunSpec(
                            run_index=run_index,
                            scenario=case.scenario,
                            overrides=overrides,
                            params=params,
                            seed_index=replicate if experiment.common_random_numbers else run_index,
                            base_seed=experiment.seed,
                            scale=experiment.scale,
                            end=experiment.end,
                            labels={"case": case.label, "case_index": case_index, "point": point_index,
                                    "replicate": replicate, **{f"factor_{k}": v for k, v in case.levels.items()},
                                    **{f"context_{k}": v for k, v in levers.items()}},
                        )
                    )
    return specs
