"""Calibration targets (calibration/targets.yaml) and the one mapping from run summaries to statistics.

``simulated_statistics`` is the only place where a run's per-trust ``summary`` becomes the numbers
compared with the published figures; calibration, the fit report, the posterior-predictive ensemble
and the tests all call it, so that they can never disagree on what a statistic means.

Statistic values:
  count, ratio  the summary value as is
  ordinal       the CQC rating at that inspection year scored 0 (inadequate) .. 3 (outstanding)
  choice        1 when the trust's choice (``value_stream_selection``: top_down | bottom_up) is the
                published one, otherwise 0; the observed value is therefore 1
  ordering      how far the trust is from holding the stated extreme among the trusts simulated
                (or against the one trust named by ``than``): 1 when its rank (1 = most extreme in
                the stated direction; ties count in its favour) is <= ``within``, otherwise
                ``rank - within + 1``; the observed value is therefore always 1.

A target of ``trust: all`` pools the trusts: ``lead_time_reduction`` over all of them is
``1 - sum(post) / sum(baseline)`` of the summed lead times (``lead_time_post_hours``,
``lead_time_baseline_hours``), as the evaluation pooled its 82 RPIWs; ``pooled`` gives each trust's
published (baseline, post) hours, so that the observed value over any subset of the trusts (a
leave-one-trust-out calibration) is the same pooling of the published figures.

Role: ``fitted`` targets enter the ABC distance; ``checked`` ones are computed and reported beside
the fit, never fitted (``TargetSet.fitted``).

Survey statistics (``survey.<measure>``) are comparable with the evaluation only from a full-scale
run (sim/survey.py, "Scale"): from a run whose survey is marked ``comparable: false`` (or, in a
summary without the flag, a run below scale 1) they are NaN, and so is an ordering that compares
such a run. A calibration below scale 1 uses ``TargetSet.for_scale`` and fits no survey targets.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from sim.errors import InputError, InputModel, read_yaml, validation_message
from sim.survey import MEASURES as SURVEY_MEASURES

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TARGETS = REPO_ROOT / "calibration" / "targets.yaml"
TRUST_NAMES = ("SASH", "LTHT", "UHCW", "SATH", "BHRUT")
Trust = Literal["SASH", "LTHT", "UHCW", "SATH", "BHRUT"]   # a field that names one of TRUST_NAMES
RATINGS = ("inadequate", "requires_improvement", "good", "outstanding")
SCALAR_STATISTICS = (
    "staff", "l4l_participants_2018_11", "l4l_participants_2018_12", "l4l_complete_2021_03",
    "l4l_in_progress_2021_03", "alt_complete_2021_03", "alt_in_progress_2021_03", "value_streams_2019_07",
    "rpiws_2019_07", "lead_time_baseline_hours", "lead_time_post_hours", "lead_time_reduction",
    "defects_baseline", "defects_post", "defects_reduction", "quality_final", "engagement_mean_final",
    "morale_final", "cqc_latest_score", "value_stream_selection",
)
CHOICES = ("top_down", "bottom_up")
POOLED_STATISTICS = {"lead_time_reduction": ("lead_time_baseline_hours", "lead_time_post_hours")}
POOLED_TOLERANCE = 0.0015   # a pooled target's stated observation vs its published components (rounding)


class Target(InputModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trust: Literal["SASH", "LTHT", "UHCW", "SATH", "BHRUT", "all"]   # all: pooled over the trusts
    statistic: str = Field(min_length=1)
    kind: Literal["count", "ratio", "ordinal", "ordering", "choice"]
    observed: float | str
    source: str = Field(min_length=1)
    weight: float = Field(ge=0.0, le=100.0)
    role: Literal["fitted", "checked"]
    pooled: dict[Trust, tuple[float, float]] | None = None
    relation: Literal["highest", "lowest"] | None = None
    within: int = Field(1, ge=1, le=4)
    than: Trust | None = None
    note: str = ""

    @model_validator(mode="after")
    def _consistent(self):
        _check_statistic_name(self.statistic)
        if (self.role == "checked") != (self.weight == 0):
            raise ValueError(f"a {self.role} target has weight {self.weight}: a checked target is never fitted "
                             "(weight 0), a fitted one has a weight above 0")
        if (self.trust == "all") != (self.pooled is not None):
            raise ValueError("a target of trust 'all' pools the trusts and needs 'pooled' (each trust's published "
                             "(baseline, post)); only such a target has 'pooled'")
        if self.pooled is not None:
            self._check_pooled()
        if (self.kind == "choice") != (self.statistic == "value_stream_selection"):
            raise ValueError("kind 'choice' reads value_stream_selection, and value_stream_selection is a 'choice'")
        if self.kind == "choice" and self.observed not in CHOICES:
            raise ValueError(f"a choice target observes one of {', '.join(CHOICES)}, got '{self.observed}'")
        if self.kind in ("count", "ratio"):
            if isinstance(self.observed, str):
                raise ValueError(f"observed must be a number for kind '{self.kind}', got '{self.observed}'")
            if self.observed < 0 or (self.kind == "ratio" and self.observed > 1):
                allowed = "0..1" if self.kind == "ratio" else ">= 0"
                raise ValueError(f"observed {self.observed} is outside {allowed} for kind '{self.kind}'")
        if self.kind == "ordinal":
            if self.observed not in RATINGS or not self.statistic.startswith("cqc."):
                raise ValueError(f"an ordinal target reads cqc.<year> and observes one of {', '.join(RATINGS)}")
        if self.kind == "ordering":
            if self.relation is None or self.observed != self.relation:
                raise ValueError("an ordering target needs relation: highest|lowest and observed equal to it")
            if self.than == self.trust or (self.than and self.within != 1):
                raise ValueError("'than' names another trust, and is not combined with 'within'")
        elif self.relation is not None or self.than is not None:
            raise ValueError("relation and than are only allowed for kind 'ordering'")
        return self

    def _check_pooled(self) -> None:
        if self.statistic not in POOLED_STATISTICS or self.kind != "ratio":
            raise ValueError(f"a pooled target reads one of {', '.join(POOLED_STATISTICS)} as a ratio")
        if any(base <= 0 or post < 0 for base, post in self.pooled.values()):
            raise ValueError("pooled (baseline, post) must have baseline > 0 and post >= 0")
        if isinstance(self.observed, (int, float)) and abs(self.pooled_value(self.pooled) - self.observed) > POOLED_TOLERANCE:
            raise ValueError(f"observed {self.observed} is not the pooling of its components "
                             f"(1 - sum(post) / sum(baseline) = {self.pooled_value(self.pooled):.4f})")

    @staticmethod
    def pooled_value(pairs) -> float:
        pairs = list(pairs.values()) if isinstance(pairs, dict) else list(pairs)
        return 1.0 - sum(post for _, post in pairs) / sum(base for base, _ in pairs)

    def observed_for(self, trusts) -> float:
        """The observed value when only ``trusts`` are compared (differs from ``observed_value`` only for a
        pooled target, pooled over the trusts present)."""
        if self.pooled is None:
            return self.observed_value
        present = [self.pooled[t] for t in self.pooled if t in set(trusts)]
        return self.pooled_value(present) if len(present) < len(self.pooled) else self.observed_value

    def trusts_compared(self, trusts) -> list[str]:
        """The trusts whose runs this target reads, among ``trusts``."""
        trusts = [t for t in TRUST_NAMES if t in set(trusts)]
        if self.pooled is not None:
            return [t for t in trusts if t in self.pooled]
        if self.than:
            return [self.trust, self.than]
        return trusts if self.kind == "ordering" else [self.trust]

    @property
    def id(self) -> str:
        suffix = f".{self.relation}" if self.kind == "ordering" else ""
        if self.than:
            suffix += f"_than_{self.than}"
        return f"{self.trust}.{self.statistic}{suffix}"

    @property
    def observed_value(self) -> float:
        if self.kind == "ordinal":
            return float(RATINGS.index(self.observed))
        if self.kind in ("ordering", "choice"):
            return 1.0
        return float(self.observed)


# Families of targets, by what a statistic measures: the screen splits the distance by them, and a calibration
# in blocks (--fit) fits some of them first (docs/calibration.md, "Calibration in blocks").
FAMILIES = {"cqc": "CQC ratings", "l4l": "L4L counts", "alt": "ALT counts", "rpiws": "RPIWs",
            "value_streams": "value streams", "lead_time": "lead time", "survey": "network survey orderings"}
_STEM_FAMILY = {"value_stream_selection": "value_streams", "lead_time_reduction": "lead_time"}


def target_family(target_id: str) -> str:
    """The family key of a target: 'SASH.cqc.2019' -> cqc, 'SASH.l4l_complete_2021_03' -> l4l,
    'SASH.survey.dyad_reciprocity' -> survey."""
    statistic = target_id.split(".", 1)[1] if "." in target_id else target_id
    stem = re.sub(r"_\d{4}_\d{2}$", "", statistic.split(".")[0])
    if stem.startswith(("l4l_", "alt_")):   # l4l_complete, alt_in_progress, ...: one family each
        stem = stem.split("_")[0]
    return _STEM_FAMILY.get(stem, stem)


class TargetSet(InputModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = ""
    cqc_before: dict[Trust, Literal["inadequate", "requires_improvement", "good", "outstanding"]] = {}
    targets: list[Target] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self):
        seen = set()
        for target in self.targets:
            if target.id in seen:
                raise ValueError(f"target '{target.id}' appears twice")
            seen.add(target.id)
        return self

    def for_scale(self, scale: float) -> TargetSet:
        """The targets a run at ``scale`` can be compared with: no survey statistics below full scale."""
        if scale >= 1:
            return self
        return self.model_copy(update={"targets": [t for t in self.targets if not is_survey_statistic(t.statistic)]})

    def fitted(self) -> TargetSet:
        """The targets the ABC distance fits (role ``fitted``); the checked ones are only reported."""
        return self.model_copy(update={"targets": [t for t in self.targets if t.role == "fitted"]})

    def in_families(self, families) -> TargetSet:
        """The targets of ``families`` (keys of FAMILIES); none given: all of them."""
        if not families:
            return self
        return self.model_copy(update={"targets": [t for t in self.targets if target_family(t.id) in families]})

    def for_trusts(self, trusts) -> list[Target]:
        """Targets that can be computed from runs of ``trusts`` (orderings need two or more; a pooled target
        any of its trusts)."""
        trusts = set(trusts)
        return [t for t in self.targets
                if (t.trust in trusts or (t.pooled is not None and trusts & set(t.pooled)))
                and (t.kind != "ordering" or len(trusts) >= 2)
                and (t.than is None or t.than in trusts)]

    def observed(self, trusts=TRUST_NAMES) -> dict[str, float]:
        return {t.id: t.observed_for(trusts) for t in self.for_trusts(trusts)}

    def weights(self, trusts=TRUST_NAMES) -> dict[str, float]:
        return {t.id: t.weight for t in self.for_trusts(trusts)}

    def by_id(self) -> dict[str, Target]:
        return {t.id: t for t in self.targets}


def _check_statistic_name(name: str) -> None:
    if name in SCALAR_STATISTICS or name in POOLED_STATISTICS:
        return
    head, _, tail = name.partition(".")
    if head == "cqc" and tail.isdigit() and len(tail) == 4:
        return
    if head == "survey" and tail in SURVEY_MEASURES:
        return
    raise ValueError(f"unknown statistic '{name}'; allowed: {', '.join(SCALAR_STATISTICS)}, "
                     f"cqc.<year>, survey.<measure> with measure one of {', '.join(SURVEY_MEASURES)}")


def is_survey_statistic(statistic: str) -> bool:
    return statistic.partition(".")[0] == "survey"


def survey_comparable(summary: dict) -> bool:
    """Whether a run's survey measures are comparable with the evaluation's (a full-scale survey)."""
    flag = summary.get("survey", {}).get("comparable")
    if flag is None or (isinstance(flag, float) and math.isnan(flag)):
        return float(summary.get("scale", 1.0)) >= 1
    if isinstance(flag, str):   # a flag read back from a results table
        return flag.strip().lower() == "true"
    return bool(flag)


def load_targets(path: str | Path = DEFAULT_TARGETS) -> TargetSet:
    """Read and validate a targets file; InputError names the file, the field and what is allowed."""
    path = Path(path)
    raw = read_yaml(path, "targets")
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a targets file must be a mapping with a 'targets' list")
    try:
        return TargetSet.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{path}: {validation_message(exc)}") from None


def check_targets_reached(targets: TargetSet, trusts, end: dt.date | None, where: str = "--end") -> None:
    """Refuse an early ``end`` that stops the runs before a date a target reads (an inspection, the survey)."""
    if end is None:
        return
    from sim.scenario import load_scenario

    needed = []   # (date, target id, what)
    for target in targets.for_trusts(trusts):
        compared = target.trusts_compared(trusts)
        head, _, tail = target.statistic.partition(".")
        for trust in compared:
            scenario = load_scenario(trust)
            if head == "cqc":
                dates = [d for d in scenario.inspections if str(d.year) == tail]
                needed += [(min(dates), target.id, f"{trust}'s inspection")] if dates else []
            elif head == "survey" and scenario.survey:
                needed.append((scenario.survey.date, target.id, f"{trust}'s survey"))
    missed = sorted(item for item in needed if item[0] > end)
    if missed:
        date, target_id, what = missed[0]
        raise InputError(f"{where} {end}: the runs would stop before {what} of {date}, which the calibration "
                         f"target '{target_id}' compares with; give {where} on or after {max(missed)[0]}, or leave "
                         f"{where} out")


@lru_cache(maxsize=1)
def default_targets() -> TargetSet:
    return load_targets(DEFAULT_TARGETS)


def rating_score(rating: str) -> float:
    return float(RATINGS.index(rating))


def summary_value(summary: dict, statistic: str) -> float:
    """The raw value of a statistic in one trust's summary (a CQC rating scored 0-3)."""
    head, _, tail = statistic.partition(".")
    if head == "cqc":
        return rating_score(summary["cqc"][tail])
    if head == "survey":
        return float(summary["survey"][tail]) if survey_comparable(summary) else float("nan")
    return float(summary[statistic])


def ordering_rank(target: Target, values: dict[str, float]) -> float:
    """An ordering target's statistic from the compared trusts' values (``values``: trust -> value): the trust's
    rank by ``relation``, less ``within`` - 1 (1 when within), NaN when a value is missing."""
    if any(math.isnan(v) for v in values.values()):
        return float("nan")
    mine = values[target.trust]
    if target.relation == "highest":
        rank = 1 + sum(v > mine for v in values.values())
    else:
        rank = 1 + sum(v < mine for v in values.values())
    return float(max(1, rank - target.within + 1))


def pooled_reduction(pairs: list[tuple[float, float]]) -> float:
    """A pooled target's statistic from each trust's simulated (baseline, post); NaN when nothing was measured."""
    if sum(base for base, _ in pairs) <= 0:
        return float("nan")   # no RPIW measured in any trust
    return Target.pooled_value(pairs)


def _ordering_statistic(target: Target, summaries: dict[str, dict]) -> float:
    compared = [target.trust, target.than] if target.than else list(summaries)
    return ordering_rank(target, {trust: summary_value(summaries[trust], target.statistic) for trust in compared})


def _pooled_statistic(target: Target, summaries: dict[str, dict]) -> float:
    base_key, post_key = POOLED_STATISTICS[target.statistic]
    return pooled_reduction([(float(summaries[t][base_key]), float(summaries[t][post_key]))
                             for t in target.trusts_compared(summaries)])


def cross_trust_components(summaries: dict[str, dict], targets: TargetSet) -> dict[str, float]:
    """The per-trust values that the orderings and pooled targets compare, keyed ``TRUST.statistic``: from them
    such a target can be recomputed over fewer trusts (``statistics_over``; the leave-one-trust-out posteriors of
    sim/calibration/recycle.py)."""
    values = {}
    for target in targets.for_trusts(summaries):
        if target.kind == "ordering":
            for trust in target.trusts_compared(summaries):
                values[f"{trust}.{target.statistic}"] = summary_value(summaries[trust], target.statistic)
        elif target.pooled is not None:
            for key in POOLED_STATISTICS[target.statistic]:
                for trust in target.trusts_compared(summaries):
                    values[f"{trust}.{key}"] = float(summaries[trust][key])
    return values


def statistics_over(trusts, per_trust: dict[str, float], components: dict[str, float],
                    targets: TargetSet) -> dict[str, float]:
    """The statistics of ``targets.for_trusts(trusts)`` from one run's statistics of more trusts: a per-trust
    target's value as it was (``per_trust``, keyed by target id), an ordering or pooled target recomputed over
    ``trusts`` from ``components`` (``cross_trust_components`` of that run), as ``simulated_statistics`` would
    compute it from runs of ``trusts`` alone."""
    stats = {}
    for target in targets.for_trusts(trusts):
        compared = target.trusts_compared(trusts)
        if target.kind == "ordering":
            stats[target.id] = ordering_rank(target, {t: components[f"{t}.{target.statistic}"] for t in compared})
        elif target.pooled is not None:
            base_key, post_key = POOLED_STATISTICS[target.statistic]
            stats[target.id] = pooled_reduction([(components[f"{t}.{base_key}"], components[f"{t}.{post_key}"])
                                                 for t in compared])
        else:
            stats[target.id] = per_trust[target.id]
    return stats


def simulated_statistics(summaries: dict[str, dict], targets: TargetSet | None = None) -> dict[str, float]:
    """Map per-trust run summaries to the calibration statistics, keyed like ``TargetSet.observed``.

    Only targets whose trust is in ``summaries`` are returned; orderings compare the trusts present.
    """
    targets = targets or default_targets()
    stats = {}
    for target in targets.for_trusts(summaries):
        try:
            if target.kind == "ordering":
                stats[target.id] = _ordering_statistic(target, summaries)
            elif target.pooled is not None:
                stats[target.id] = _pooled_statistic(target, summaries)
            elif target.kind == "choice":
                stats[target.id] = float(summaries[target.trust][target.statistic] == target.observed)
            else:
                stats[target.id] = summary_value(summaries[target.trust], target.statistic)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"target '{target.id}': statistic '{target.statistic}' is not in the run "
                             f"summary ({type(exc).__name__}: {exc}); check the targets file against "
                             "summary.json") from None
    return stats
