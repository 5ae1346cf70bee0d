"""Why the model misses an acceptance check (calibration/known_misses.yaml), for the fit report.

The explanations are written by people, per trust and check; the report prints the one for every
check its ensemble misses, and names a missed check without one as unexplained, so a new miss
cannot hide behind an old explanation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim.errors import InputError, read_yaml, validation_message

from .targets import REPO_ROOT, Trust

DEFAULT_KNOWN_MISSES = REPO_ROOT / "calibration" / "known_misses.yaml"
Check = Literal["latest_cqc", "direction", "l4l_complete_2021_03", "l4l_in_progress_2021_03", "rpiws_2019_07",
                "lead_time_reduction"]


class KnownMiss(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trusts: list[Trust] = Field(min_length=1)
    checks: list[Check] = Field(min_length=1)
    cause: Literal["mechanism", "input", "calibration"]
    why: str = Field(min_length=1)


class KnownMisses(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    misses: list[KnownMiss]

    @model_validator(mode="after")
    def _each_check_explained_once(self):
        pairs = [(trust, check) for m in self.misses for trust in m.trusts for check in m.checks]
        twice = sorted({f"{t} {c}" for t, c in pairs if pairs.count((t, c)) > 1})
        if twice:
            raise ValueError(f"explained more than once: {', '.join(twice)}; give each trust's check one entry")
        return self

    def explanation(self, trust: str, check: str) -> KnownMiss | None:
        return next((m for m in self.misses if trust in m.trusts and check in m.checks), None)


def load_known_misses(path: str | Path = DEFAULT_KNOWN_MISSES) -> KnownMisses:
    """Read and validate the explanations; InputError names the file, the field and what is allowed."""
    path = Path(path)
    raw = read_yaml(path, "known misses")
    try:
        return KnownMisses.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{path}: {validation_message(exc)}") from None
