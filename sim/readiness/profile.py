"""The organisation profile: plain questions a leader can answer, as a validated pydantic model.

Every field is one question (``QUESTIONS`` holds its wording, the allowed answers and the default). A
profile file is YAML with one key per question; ``orgsim readiness init`` writes it, asking in the
terminal or writing the commented template (``template()``). Bad answers are refused with one message
naming the file, the question and what is allowed (``sim.errors.InputError``). How each answer becomes
scenario fields is in ``sim/readiness/mapping.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim.errors import InputError, read_yaml
from sim.scenario import Date, _DatesAsText



class CeoChangePlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    date: Date
    kind: Literal["permanent", "interim"]


class Profile(BaseModel):
    """One organisation in its leaders' words (each field is a question of ``QUESTIONS``)."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    organisation: str = Field(min_length=1, max_length=80)
    staff: int = Field(ge=200, le=100_000)
    programme_start: Date
    horizon_years: int = Field(5, ge=3, le=5)
    ceo_started: Date
    ceo_change: CeoChangePlan | None = None
    ceo_joins_l4l: Date | None = None
    values_work_years: float = Field(0.0, ge=0, le=20)
    values_work_continues: bool = False
    culture_in_place: list[Literal["shared_values", "values_based_recruitment", "reflective_routines"]] = []
    distributed_leadership: Literal["none", "partly", "in_place"] = "none"
    regulatory_position: Literal["none", "regulatory_action", "special_measures_quality",
                                 "special_measures_finance"] = "none"
    regulatory_since: Date | None = None
    regulatory_until: Date | None = None
    regulator_relationship: Literal["relational", "traditional"] = "traditional"
    improvement_team: int = Field(ge=0, le=500)
    l4l_cohorts_per_year: float = Field(2.0, ge=0, le=50)
    alt_places_per_year: float = Field(6.0, ge=0, le=500)
    rpiws_per_year: float = Field(6.0, ge=0, le=100)
    value_streams: Literal["top_down", "bottom_up", "not_decided"] = "not_decided"
    network_survey: str | None = None
    staff_engagement: float | None = Field(None, ge=0, le=10)

    @field_validator("culture_in_place", mode="before")
    @classmethod
    def _list(cls, value):
        if value is None:
            return []
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("network_survey", "ceo_change", "ceo_joins_l4l", "regulatory_since", "regulatory_until", "staff_engagement",
                     mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        return None if isinstance(value, str) and value.strip().lower() in ("", "none", "no") else value

    @model_validator(mode="after")
    def _consistent(self):
        if self.ceo_started > self.programme_start:
            raise ValueError("ceo_started: the chief executive must be in post by the programme start; a later "
                             "arrival is a planned change (question ceo_change)")
        if self.ceo_change and not self.programme_start < self.ceo_change.date <= self.end:
            raise ValueError(f"ceo_change: the date must fall after the programme starts ({self.programme_start}) "
                             f"and by the end of the horizon ({self.end})")
        if self.ceo_joins_l4l and not self.programme_start <= self.ceo_joins_l4l <= self.end:
            raise ValueError(f"ceo_joins_l4l: the date must fall between the programme start ({self.programme_start}) "
                             f"and the end of the horizon ({self.end})")
        if self.regulatory_position == "none" and (self.regulatory_since or self.regulatory_until):
            raise ValueError("regulatory_since/regulatory_until: give them only with a regulatory_position")
        if self.regulatory_until and self.regulatory_until <= self.programme_start:
            raise ValueError(f"regulatory_until: the regulatory position must last past the programme start "
                             f"({self.programme_start}); if it has ended, answer regulatory_position: none")
        if self.regulatory_since and self.regulatory_since > self.programme_start:
            raise ValueError("regulatory_since: a position that begins after the programme starts is a risk, "
                             "not the current position (answer none)")
        return self

    @property
    def end(self) -> dt.date:
        return add_years(self.programme_start, self.horizon_years)


def add_years(date: dt.date, years: float) -> dt.date:
    """``date`` plus ``years`` (whole months; 29 February becomes 28 February)."""
    from sim.runner import horizon_date

    return horizon_date(date, round(12 * years))


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    allowed: str
    default: object
    example: object = None     # shown in the template where the default is blank


def _default_start() -> dt.date:
    today = dt.date.today()
    month = today.month + 6
    return dt.date(today.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def questions() -> list[Question]:
    """The questionnaire, in the order asked (defaults: a trust starting in six months)."""
    start = _default_start()
    return [
        Question("organisation", "What is your organisation called?", "a name", "My trust"),
        Question("staff", "How many staff work there (headcount)?", "a whole number, 200-100000", 5000),
        Question("programme_start", "When will the improvement programme start (the first Lean for Leaders cohort)?",
                 "a date YYYY-MM or YYYY-MM-DD", start.isoformat()),
        Question("horizon_years", "How many years ahead should the report look?", "3, 4 or 5", 5),
        Question("ceo_started", "When did your chief executive start in post?", "a date YYYY-MM",
                 add_years(start, -3).isoformat()),
        Question("ceo_change", "Is a change of chief executive planned or expected after the start? Give the date "
                 "and whether a permanent or an interim (acting) chief executive takes over.",
                 "blank for none, or {date: YYYY-MM, kind: permanent | interim}", None,
                 {"date": add_years(start, 2).isoformat(), "kind": "interim"}),
        Question("ceo_joins_l4l", "When will the chief executive join a Lean for Leaders cohort (the five trusts' "
                 "did in 2019)?", "a date YYYY-MM, or blank if not planned", None, start.isoformat()),
        Question("values_work_years", "How many years of values-based cultural work have you done so far (shared "
                 "values, values into recruitment and appraisal)?", "a number of years, 0 if none", 0),
        Question("values_work_continues", "Will that cultural work go on through the programme?", "yes or no", False),
        Question("culture_in_place", "Which of these are in place now?",
                 "a list of: shared_values (simple shared values staff know), values_based_recruitment, "
                 "reflective_routines (formal routines of collective reflective talk); [] for none", []),
        Question("distributed_leadership", "Is leadership distributed to clinicians (clinically led, managerially "
                 "enabled)?", "none, partly or in_place", "none"),
        Question("regulatory_position", "What is your regulatory position now?",
                 "none, regulatory_action (warning notices, conditions), special_measures_quality or "
                 "special_measures_finance", "none"),
        Question("regulatory_since", "If under regulatory action or special measures: since when?",
                 "a date YYYY-MM; blank: for at least two years", None),
        Question("regulatory_until", "If under regulatory action or special measures: until when do you expect it?",
                 "a date YYYY-MM; blank: throughout the horizon", None),
        Question("regulator_relationship", "How does the regulator work with you?",
                 "relational (supportive, improvement-focused) or traditional (inspect and enforce)", "traditional"),
        Question("improvement_team", "How many people will your central improvement team (KPO) have, full time?",
                 "a whole number, 0 if none (the five trusts had about 2 per 1,000 staff)", 10),
        Question("l4l_cohorts_per_year", "How many Lean for Leaders cohorts (20-30 leaders each) a year?",
                 "a number, e.g. 2", 2),
        Question("alt_places_per_year", "How many Advanced Lean Training places a year?", "a number, e.g. 6", 6),
        Question("rpiws_per_year", "How many Rapid Process Improvement Workshops (RPIWs) a year?",
                 "a number, e.g. 6 (SATH aimed at 24)", 6),
        Question("value_streams", "How will value streams be chosen?",
                 "top_down (by the board, from organisational priorities), bottom_up (by teams, to build "
                 "engagement) or not_decided (the model chooses as the five trusts did, from your culture)",
                 "not_decided"),
        Question("network_survey", "Your staff network survey, if you have one: a CSV file of who talks to whom about "
                 "improvement (columns source,target; path relative to this file)", "a path, or blank", None,
                 "network_survey.csv"),
        Question("staff_engagement", "Your NHS Staff Survey engagement score, if known", "0-10, or blank", None, 6.8),
    ]


def question_of(key: str) -> Question | None:
    return next((q for q in questions() if q.key == key), None)


def _problem(error: ValidationError) -> str:
    """One line naming each question at fault (its key and wording) and what is allowed."""
    problems = []
    for item in error.errors():
        key = str(item["loc"][0]) if item["loc"] else ""
        message = item["msg"].removeprefix("Value error, ")
        if not key and ":" in message.split(" ")[0]:       # a cross-question rule names its question first
            key, message = message.split(":", 1)
            message = message.strip()
        question = question_of(key)
        if item["type"] == "extra_forbidden":
            problems.append(f"'{key}' is not a question of the profile; the questions are: "
                            + ", ".join(q.key for q in questions()))
        elif question:
            problems.append(f"question '{key}' ({question.text}): {message}; allowed: {question.allowed}")
        else:
            problems.append(f"{key or 'profile'}: {message}")
    return "; ".join(problems)


def validate_profile(raw: dict, source: str) -> Profile:
    if not isinstance(raw, dict):
        raise InputError(f"{source}: a profile must be a mapping of answers (question: answer)")
    missing = [q.key for q in questions() if q.key in REQUIRED and q.key not in raw]
    if missing:
        raise InputError(f"{source}: unanswered question(s) " + "; ".join(
            f"'{key}' ({question_of(key).text})" for key in missing))
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{source}: {_problem(exc)}") from None


REQUIRED = ("organisation", "staff", "programme_start", "ceo_started", "improvement_team")


def load_profile(path: str | Path) -> Profile:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: profile file not found (write one with: orgsim readiness init --out {path})")
    return validate_profile(read_yaml(path, "profile", loader=_DatesAsText), str(path))


def survey_path(profile: Profile, profile_file: str | Path | None) -> Path | None:
    """The network survey CSV, relative to the profile file's folder."""
    if not profile.network_survey:
        return None
    path = Path(profile.network_survey)
    if not path.is_absolute() and profile_file is not None:
        path = Path(profile_file).parent / path
    return path


# -- the template and the terminal questionnaire ---------------------------------------------------------
def _yaml_value(value) -> str:
    if value is None:
        return ""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip().removesuffix("...").strip()


def template(answers: dict | None = None) -> str:
    """The profile as commented YAML: each question, what is allowed, and the answer (or the default)."""
    answers = answers or {}
    lines = ["# Organisation profile for `orgsim readiness PROFILE` (sim/readiness/profile.py).",
             "# Answer each question; how every answer becomes model inputs is in sim/readiness/mapping.py.",
             "# Dates: YYYY-MM-DD, YYYY-MM or YYYY. Blank means none.", ""]
    for q in questions():
        value = answers.get(q.key, q.default)
        lines.append(f"# {q.text}")
        lines.append(f"#   allowed: {q.allowed}")
        if value is None and q.example is not None:
            lines.append(f"#   e.g. {q.key}: {_yaml_value(q.example)}")
        lines.append(f"{q.key}: {_yaml_value(value)}".rstrip())
        lines.append("")
    return "\n".join(lines)


def _parse_answer(question: Question, text: str):
    """A typed answer from the terminal (YAML scalars: numbers, yes/no, lists in [a, b] or a, b)."""
    text = text.strip()
    if question.key == "ceo_change" and text and not text.startswith("{"):
        parts = text.replace(",", " ").split()          # "interim 2028-01" or "2028-01 permanent"
        kind = next((p for p in parts if p in ("permanent", "interim")), None)
        date = next((p for p in parts if p not in ("permanent", "interim")), None)
        return {"date": date, "kind": kind}
    if question.key == "culture_in_place" and text and not text.startswith("["):
        return [p.strip() for p in text.split(",") if p.strip()]
    value = yaml.load(text, Loader=_DatesAsText) if text else None   # noqa: S506 (a safe loader)
    return value


def ask(input_fn=input, print_fn=print) -> dict:
    """Ask every question in the terminal; Enter keeps the default shown. A bad answer is explained and asked again."""
    answers: dict = {}
    print_fn("Describe your organisation (Enter keeps the [default]).")
    for q in questions():
        while True:
            shown = _yaml_value(q.default) if q.default is not None else "none"
            text = input_fn(f"{q.text}\n  ({q.allowed}) [{shown}]: ")
            value = q.default if not text.strip() else _parse_answer(q, text)
            trial = {**_filled(answers), q.key: value}
            try:
                Profile.model_validate(trial)
            except ValidationError as exc:
                own = [e for e in exc.errors() if (e["loc"] and e["loc"][0] == q.key)
                       or (not e["loc"] and e["msg"].removeprefix("Value error, ").startswith(f"{q.key}:"))]
                if own:
                    print_fn(f"  not accepted: {own[0]['msg'].removeprefix('Value error, ')}; allowed: {q.allowed}")
                    continue
            answers[q.key] = value
            break
    return answers


def _filled(answers: dict) -> dict:
    """Answers so far with the defaults of the rest, to check one answer on its own."""
    return {**{q.key: q.default for q in questions()}, **answers}
